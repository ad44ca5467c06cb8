#!/usr/bin/env python3
"""Second-engine power-flow reference for the IEEE European LV test feeder.

Builds the feeder in pandapower from the neutral CSV files of the shared
reference data (``<refdata>/ieee_eu_lv/``), solves it with pandapower's
three-phase unbalanced power flow (``pandapower.runpp_3ph``) at minutes 566,
1 and 1440, and writes one CSV per minute::

    eu_lv_m566.csv  eu_lv_m1.csv  eu_lv_m1440.csv

each with the columns ``bus,phase,vm_v,va_deg`` (phase-to-neutral magnitude in
volts and angle in degrees), in the bus/phase order of the OpenDSS reference
``voltages_m566.csv``.

With ``--compare`` it also prints the agreement of minute 566 with OpenDSS's
``voltages_m566.csv``.

Usage::

    python eu_lv.py [--refdata DIR] [--out DIR] [--compare]

``--refdata`` defaults to the repository's ``data/`` (where the Rust tests
read the feeder too). ``--out``
defaults to the directory of this script.

The model (see README.md beside this script for the reasoning):

* Source: an ideal 11 kV, 1.05 pu, 0 deg EMF (pandapower ``ext_grid`` on an
  internal bus ``sourcebus_emf``) behind the source impedance
  Z1 = Z2 = 0.51344 + j2.05374 ohm (ISC3 = 3000 A, X/R = 4), modelled as a
  1 km, 11 kV line to ``sourcebus``. pandapower's ``ext_grid`` is an ideal
  slack in the positive sequence, so the impedance must be explicit to get the
  source-bus voltage drop OpenDSS has. The ``ext_grid`` itself is made stiff
  (negligible negative/zero-sequence impedance).
* Transformer: 800 kVA, 11/0.416 kV, Dyn with LV lagging HV by 30 deg
  (``vector_group="Dyn"``, ``shift_degree=30``), X = 4 %, R = 0.4 %, no core
  loss, no magnetising current, zero-sequence impedance equal to the
  positive-sequence one (T model with an open zero-sequence magnetising
  branch).
* Lines: sequence impedances r1, x1, r0, x0 from ``linecodes.csv``, C = 0.
* Loads: constant-PQ, single-phase wye (``create_asymmetric_load``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
import pandapower as pp

FEEDER = "ieee_eu_lv"
MINUTES = (566, 1, 1440)
PHASES = ("a", "b", "c")

# Source: 11 kV L-L, 1.05 pu, ISC3 = 3000 A, X/R = 4.
SOURCE_KV = 11.0
SOURCE_PU = 1.05
SOURCE_ISC3_A = 3000.0
SOURCE_XR = 4.0
# |Z1| = V_LN / ISC3
_Z1_ABS = SOURCE_KV * 1e3 / math.sqrt(3.0) / SOURCE_ISC3_A
SOURCE_R1 = _Z1_ABS / math.sqrt(1.0 + SOURCE_XR**2)  # 0.51344 ohm
SOURCE_X1 = SOURCE_XR * SOURCE_R1  # 2.05374 ohm
# A stiff ext_grid behind the explicit source impedance: its negative- and
# zero-sequence impedance is some six orders of magnitude below |Z1|; going
# from 1e8 to 1e10 MVA moves no LV voltage by more than 1e-9 pu.
EXT_GRID_S_SC_MVA = 1e8

# Transformer: 800 kVA, 11/0.416 kV, Dyn (LV lags HV by 30 deg), X 4 %, R 0.4 %.
TR_SN_MVA = 0.8
TR_VN_HV_KV = 11.0
TR_VN_LV_KV = 0.416
TR_X_PERCENT = 4.0
TR_R_PERCENT = 0.4
TR_VK_PERCENT = math.hypot(TR_X_PERCENT, TR_R_PERCENT)  # 4.0199502...
TR_SHIFT_DEG = 30.0

# Solver settings.
MAX_ITERATION = 100
TOLERANCE_MVA = 1e-11
POLISH_PASSES = 10
POLISH_TOL_PU = 1e-10


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def default_refdata() -> Path:
    return repo_root() / "data"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def build_net(feeder_dir: Path) -> tuple[pp.pandapowerNet, dict[str, int]]:
    """Build the feeder without loads. Returns the net and a bus-name -> index map."""
    net = pp.create_empty_network(name="IEEE European LV test feeder", f_hz=50.0, sn_mva=1.0)

    buses: dict[str, int] = {}
    for row in read_csv(feeder_dir / "buses.csv"):
        name = row["bus"].lower()
        buses[name] = pp.create_bus(net, vn_kv=float(row["vn_kv_ll"]), name=name)
    if "sourcebus" not in buses:
        raise ValueError("buses.csv has no 'sourcebus'")

    # Ideal EMF behind the source impedance.
    emf = pp.create_bus(net, vn_kv=SOURCE_KV, name="sourcebus_emf")
    pp.create_ext_grid(
        net,
        emf,
        vm_pu=SOURCE_PU,
        va_degree=0.0,
        name="source",
        s_sc_max_mva=EXT_GRID_S_SC_MVA,
        rx_max=1.0 / SOURCE_XR,
        x0x_max=1.0,
        r0x0_max=1.0 / SOURCE_XR,
    )
    # Source impedance Z1 = Z2 = Z0. Z0 never reaches the LV side (the HV
    # winding is delta), so any valid value gives the same LV result.
    pp.create_line_from_parameters(
        net,
        emf,
        buses["sourcebus"],
        length_km=1.0,
        r_ohm_per_km=SOURCE_R1,
        x_ohm_per_km=SOURCE_X1,
        c_nf_per_km=0.0,
        r0_ohm_per_km=SOURCE_R1,
        x0_ohm_per_km=SOURCE_X1,
        c0_nf_per_km=0.0,
        max_i_ka=10.0,
        name="source_impedance",
    )

    # Substation transformer: HV on sourcebus, LV on bus 1.
    pp.create_transformer_from_parameters(
        net,
        hv_bus=buses["sourcebus"],
        lv_bus=buses["1"],
        sn_mva=TR_SN_MVA,
        vn_hv_kv=TR_VN_HV_KV,
        vn_lv_kv=TR_VN_LV_KV,
        vk_percent=TR_VK_PERCENT,
        vkr_percent=TR_R_PERCENT,
        pfe_kw=0.0,
        i0_percent=0.0,
        shift_degree=TR_SHIFT_DEG,
        vector_group="Dyn",
        vk0_percent=TR_VK_PERCENT,
        vkr0_percent=TR_R_PERCENT,
        # Zero-sequence magnetising impedance, in % of the short-circuit
        # impedance: effectively open, so the zero-sequence impedance seen
        # from LV is the leakage impedance alone, as in OpenDSS. (100 %
        # would shift LV voltages by ~5e-4 pu; 1e6 % still by ~1e-7 pu.)
        mag0_percent=1e10,
        mag0_rx=0.0,
        si0_hv_partial=0.9,
        name="TR1",
    )

    codes = {row["linecode"]: row for row in read_csv(feeder_dir / "linecodes.csv")}
    for row in read_csv(feeder_dir / "lines.csv"):
        lc = codes[row["linecode"]]
        pp.create_line_from_parameters(
            net,
            buses[row["from_bus"].lower()],
            buses[row["to_bus"].lower()],
            length_km=float(row["length_m"]) / 1000.0,
            r_ohm_per_km=float(lc["r1_ohm_per_km"]),
            x_ohm_per_km=float(lc["x1_ohm_per_km"]),
            c_nf_per_km=0.0,
            r0_ohm_per_km=float(lc["r0_ohm_per_km"]),
            x0_ohm_per_km=float(lc["x0_ohm_per_km"]),
            c0_nf_per_km=0.0,
            max_i_ka=1.0,
            name=row["line"],
        )
    return net, buses


def set_loads(net: pp.pandapowerNet, buses: dict[str, int], loads: list[dict[str, str]], minute: int) -> None:
    """Replace the asymmetric loads by those of the given minute (constant PQ, wye)."""
    if len(net.asymmetric_load):
        net.asymmetric_load.drop(net.asymmetric_load.index, inplace=True)
    for row in loads:
        phase = row["phase"].lower()
        if phase not in PHASES:
            raise ValueError(f"load {row['load']}: unknown phase {row['phase']!r}")
        p_mw = float(row[f"p_kw_m{minute}"]) / 1000.0
        q_mvar = float(row[f"q_kvar_m{minute}"]) / 1000.0
        pp.create_asymmetric_load(
            net,
            buses[row["bus"].lower()],
            type="wye",
            name=row["load"],
            **{f"p_{phase}_mw": p_mw, f"q_{phase}_mvar": q_mvar},
        )


def _run(net: pp.pandapowerNet, init: str) -> None:
    pp.runpp_3ph(
        net,
        calculate_voltage_angles=True,
        init=init,
        max_iteration=MAX_ITERATION,
        tolerance_mva=TOLERANCE_MVA,
        trafo_model="t",
        numba=False,
    )
    if not net.converged:
        raise RuntimeError("runpp_3ph did not converge")


def _state(net: pp.pandapowerNet) -> np.ndarray:
    res = net.res_bus_3ph
    vm = res[[f"vm_{ph}_pu" for ph in PHASES]].to_numpy()
    va = np.deg2rad(res[[f"va_{ph}_degree" for ph in PHASES]].to_numpy())
    return vm * np.exp(1j * va)


def solve(net: pp.pandapowerNet) -> None:
    """Flat-start runpp_3ph, then re-solve from the previous result until settled.

    runpp_3ph stops its outer (sequence-network) iteration on a fixed power
    mismatch of 3e-8 MVA, which can leave ~1e-5 deg of angle error at light
    load. Restarting from the result takes it to the round-off floor.
    """
    _run(net, "flat")
    v = _state(net)
    for _ in range(POLISH_PASSES):
        _run(net, "results")
        v_new = _state(net)
        step = float(np.max(np.abs(v_new - v)))
        v = v_new
        if step < POLISH_TOL_PU:
            return
    raise RuntimeError(f"runpp_3ph did not settle: last step {step:.3e} pu")


def phase_voltages(net: pp.pandapowerNet, buses: dict[str, int]) -> dict[tuple[str, str], tuple[float, float]]:
    """(bus, phase) -> (|V| in volts phase-to-neutral, angle in degrees)."""
    res = net.res_bus_3ph
    out = {}
    for name, idx in buses.items():
        v_base = net.bus.at[idx, "vn_kv"] * 1e3 / math.sqrt(3.0)
        for ph in PHASES:
            vm = res.at[idx, f"vm_{ph}_pu"] * v_base
            va = res.at[idx, f"va_{ph}_degree"]
            out[(name, ph)] = (float(vm), float(va))
    return out


def write_result(path: Path, order: list[tuple[str, str]], volts: dict[tuple[str, str], tuple[float, float]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["bus", "phase", "vm_v", "va_deg"])
        for key in order:
            vm, va = volts[key]
            w.writerow([key[0], key[1], f"{vm:.9g}", f"{va:.9g}"])


def wrap_deg(d: float) -> float:
    return (d + 180.0) % 360.0 - 180.0


def compare(volts, reference: list[dict[str, str]], net, buses) -> None:
    """Print the worst magnitude (pu of the bus's L-N base) and angle differences."""
    worst_v = (0.0, None)
    worst_a = (0.0, None)
    for row in reference:
        key = (row["bus"].lower(), row["phase"].lower())
        vm, va = volts[key]
        v_base = net.bus.at[buses[key[0]], "vn_kv"] * 1e3 / math.sqrt(3.0)
        dv = abs(vm - float(row["vm_v"])) / v_base
        da = abs(wrap_deg(va - float(row["va_deg"])))
        if dv > worst_v[0]:
            worst_v = (dv, key)
        if da > worst_a[0]:
            worst_a = (da, key)
    print(f"  worst |dV| = {worst_v[0]:.3e} pu at bus {worst_v[1][0]} phase {worst_v[1][1]}")
    print(f"  worst |da| = {worst_a[0]:.3e} deg at bus {worst_a[1][0]} phase {worst_a[1][1]}")


def summarise(minute: int, volts) -> None:
    parts = []
    for ph in PHASES:
        lv = [vm for (bus, p), (vm, _) in volts.items() if p == ph and bus != "sourcebus"]
        parts.append(f"{ph}: {min(lv):.4f}..{max(lv):.4f} V")
    print(f"m{minute}: LV phase voltages " + ", ".join(parts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refdata", type=Path, default=None,
                    help="data root holding ieee_eu_lv/ (default: the repository's data/)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="output directory (default: this script's directory)")
    ap.add_argument("--compare", action="store_true",
                    help="print minute 566 against OpenDSS's voltages_m566.csv")
    args = ap.parse_args(argv)

    refdata = args.refdata if args.refdata is not None else default_refdata()
    feeder_dir = refdata / FEEDER
    if not feeder_dir.is_dir():
        print(f"reference data {feeder_dir} not found (give --refdata)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    reference = read_csv(feeder_dir / "voltages_m566.csv")
    order = [(r["bus"].lower(), r["phase"].lower()) for r in reference]
    loads = read_csv(feeder_dir / "loads.csv")

    net, buses = build_net(feeder_dir)
    for minute in MINUTES:
        set_loads(net, buses, loads, minute)
        solve(net)
        volts = phase_voltages(net, buses)
        path = args.out / f"eu_lv_m{minute}.csv"
        write_result(path, order, volts)
        print(f"wrote {path}")
        summarise(minute, volts)
        if args.compare and minute == 566:
            print("m566 against OpenDSS voltages_m566.csv:")
            compare(volts, reference, net, buses)
    print(f"pandapower {pp.__version__}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
