"""OpenDSS (OpenDSSDirect.py) and pandapower (runpp_3ph) on the IEEE
European LV feeder, timed the way benches/peers/README.md (in
results/bench/peers.md) describes; prints one JSON object.

    python eu_lv.py REFDATA [--pp-minutes M]

REFDATA is the data folder holding ieee_eu_lv/ (the repository's data/). Timings are
medians of repetitions, with time.perf_counter, in this one process.

OpenDSS reads the feeder's own files (a copy of dss/ whose Master.dss has
its final `solve` removed, so that the import and the first solve are
timed apart, and the loads kept at constant PQ: vminpu=0.6 vmaxpu=1.4, as
the reference results do). Since gridtwin records nothing while it
solves, OpenDSS runs without the feeder's 1 810 monitors and its energy
meter, but for one extra day with them (day_monitored_s).

pandapower has no OpenDSS importer: the feeder is built here from the
reference data's CSV files (buses.csv, lines.csv, linecodes.csv,
loads.csv):
  - the 11 kV source as an ideal ext_grid at 1.05 pu behind a 1 km line
    of its Thevenin impedance, Z1 = Z2 = 0.51344 + j2.05374 ohm (ISC3 =
    3000 A, X/R = 4): runpp_3ph keeps an ext_grid's positive sequence
    ideal, while OpenDSS drops voltage across the source impedance; its
    zero sequence does not matter behind the delta winding;
  - the 800 kVA 11/0.416 kV Dyn transformer, vk = |0.4 + j4| %,
    vkr = 0.4 %, no core loss, LV lagging by 30 degrees, zero-sequence
    data equal to the positive;
  - each line from its linecode's sequence impedances (r1, x1, r0, x0 in
    ohm/km, no capacitance), which is the Kron-reduced phase-frame model
    OpenDSS uses for these linecodes (neutral folded into Z0);
  - each load as a wye asymmetric load on its phase, constant PQ,
    PF 0.95 (Q = 0.328684 P).
Simplifications: none in the electrical model as far as these files
describe it; line ratings are set to 10 kA (no loading limits are
studied). The comparison of its voltages with the reference (OpenDSS at
minute 566) is printed as max_dv_v.
"""

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import tempfile
import time
import warnings


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def reference_voltages(refdata):
    """{(bus, phase): V} of OpenDSS at minute 566 (the reference file)."""
    rows = read_csv(os.path.join(refdata, "ieee_eu_lv", "voltages_m566.csv"))
    return {(r["bus"].lower(), r["phase"]): float(r["vm_v"]) for r in rows}


def max_dv(got, ref):
    """Largest |V - V_ref| [V] over the LV buses and phases both have."""
    keys = [k for k in ref if k in got and k[0] != "sourcebus"]
    worst = max(keys, key=lambda k: abs(got[k] - ref[k]))
    return abs(got[worst] - ref[worst]), len(keys)


# ---------------------------------------------------------------- OpenDSS

def opendss(refdata, ref):
    import opendssdirect as dss

    src = os.path.join(refdata, "ieee_eu_lv", "dss")
    cwd = os.getcwd()  # OpenDSS's compile changes the working directory.
    work = tempfile.mkdtemp(prefix="gridtwin-peers-dss-")
    dss_dir = os.path.join(work, "dss")
    shutil.copytree(src, dss_dir)
    with open(os.path.join(dss_dir, "Master.dss")) as f:
        lines = f.read().splitlines()

    def write_master(name, monitors):
        """Master.dss without its final solve, loads kept constant PQ, and
        with or without the feeder's 1 810 monitors and its energy meter."""
        out = []
        for line in lines:
            low = line.strip().lower()
            if low == "solve":
                continue
            if not monitors and (low.startswith("redirect monitors.txt")
                                 or low.startswith("new energymeter")):
                continue
            out.append(line)
            if low.startswith("redirect loads.txt"):
                out.append("batchedit load..* vminpu=0.6 vmaxpu=1.4")
        path = os.path.join(dss_dir, name)
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path

    # gridtwin records nothing while it solves: every timing below is of
    # the feeder without its monitors, but for one day with them.
    master = write_master("Master_lean.dss", monitors=False)
    master_monitored = write_master("Master_monitored.dss", monitors=True)

    def compile_(path=master):
        dss.Text.Command("clear")
        dss.Text.Command('compile "%s"' % path)

    # Import (parse and build), then the first snapshot solve (system Y
    # built and factorised, iterations from the initial guess).
    parse, snap = [], []
    for _ in range(5):
        parse.append(timed(compile_)[0])
        dss.Text.Command("set mode=snapshot")
        snap.append(timed(dss.Solution.Solve)[0])
        assert dss.Solution.Converged()

    # Minute 566 loads for the comparison with the reference.
    compile_()
    m566 = {r["load"].lower(): (float(r["p_kw"]), float(r["q_kvar"]))
            for r in read_csv(os.path.join(refdata, "ieee_eu_lv", "loads_m566.csv"))}
    for name in dss.Loads.AllNames():
        dss.Loads.Name(name)
        p, q = m566[name.lower()]
        dss.Loads.kW(p)
        dss.Loads.kvar(q)
    dss.Text.Command("set mode=snapshot")
    dss.Solution.Solve()
    names = dss.Circuit.AllNodeNames()
    mags = dss.Circuit.AllBusVMag()
    got = {}
    for n, v in zip(names, mags):
        bus, _, node = n.partition(".")
        if node in ("1", "2", "3"):
            got[(bus.lower(), "abc"[int(node) - 1])] = v
    dv, compared = max_dv(got, ref)

    # A re-solve after a load change: one step of the yearly mode at one
    # minute (the loads follow their shapes inside OpenDSS).
    compile_()
    dss.Text.Command("set mode=yearly number=1 stepsize=1m")
    steps = []
    for _ in range(1440):
        steps.append(timed(dss.Solution.Solve)[0])
    resolve = statistics.median(steps)

    # A 1440-minute day in one command.
    days = []
    for _ in range(3):
        compile_()
        dss.Text.Command("set mode=yearly number=1440 stepsize=1m")
        days.append(timed(dss.Solution.Solve)[0])
        assert dss.Solution.Converged()
    days_monitored = []
    for _ in range(3):
        compile_(master_monitored)
        dss.Text.Command("set mode=yearly number=1440 stepsize=1m")
        days_monitored.append(timed(dss.Solution.Solve)[0])
    parse_monitored = timed(lambda: compile_(master_monitored))[0]
    os.chdir(cwd)
    shutil.rmtree(work)
    return {
        "version": dss.Basic.Version(),
        "parse_s": statistics.median(parse),
        "snapshot_s": statistics.median(snap),
        "resolve_s": resolve,
        "day_s": statistics.median(days),
        "day_monitored_s": statistics.median(days_monitored),
        "parse_monitored_s": parse_monitored,
        "max_dv_v": dv,
        "compared": compared,
    }


# ------------------------------------------------------------- pandapower

def build_pandapower(refdata):
    import pandapower as pp

    base = os.path.join(refdata, "ieee_eu_lv")
    net = pp.create_empty_network(f_hz=50.0)
    bus = {}
    for r in read_csv(os.path.join(base, "buses.csv")):
        bus[r["bus"].lower()] = pp.create_bus(net, vn_kv=float(r["vn_kv_ll"]), name=r["bus"])
    # The source: an ideal 1.05 pu slack behind its Thevenin impedance
    # Z1 = Z2 = 0.51344 + j2.05374 ohm (ISC3 = 3000 A, X/R = 4 at 11 kV),
    # as a 1 km line, since runpp_3ph keeps the ext_grid's positive
    # sequence ideal.
    thevenin = pp.create_bus(net, vn_kv=11.0, name="source_thevenin")
    pp.create_ext_grid(
        net, thevenin, vm_pu=1.05, va_degree=0.0,
        s_sc_max_mva=1e6, rx_max=0.25, x0x_max=1.0, r0x0_max=0.25,
    )
    pp.create_line_from_parameters(
        net, thevenin, bus["sourcebus"], length_km=1.0, r_ohm_per_km=0.51344,
        x_ohm_per_km=2.05374, c_nf_per_km=0.0, r0_ohm_per_km=0.51344,
        x0_ohm_per_km=2.05374, c0_nf_per_km=0.0, max_i_ka=10.0, name="source_z",
    )
    vk = math.hypot(4.0, 0.4)
    pp.create_transformer_from_parameters(
        net, bus["sourcebus"], bus["1"], sn_mva=0.8, vn_hv_kv=11.0, vn_lv_kv=0.416,
        vkr_percent=0.4, vk_percent=vk, pfe_kw=0.0, i0_percent=0.0, shift_degree=30.0,
        vector_group="Dyn", vk0_percent=vk, vkr0_percent=0.4, mag0_percent=100.0,
        mag0_rx=0.0, si0_hv_partial=0.9,
    )
    codes = {r["linecode"]: r for r in read_csv(os.path.join(base, "linecodes.csv"))}
    for r in read_csv(os.path.join(base, "lines.csv")):
        c = codes[r["linecode"]]
        pp.create_line_from_parameters(
            net, bus[r["from_bus"].lower()], bus[r["to_bus"].lower()],
            length_km=float(r["length_m"]) / 1000.0,
            r_ohm_per_km=float(c["r1_ohm_per_km"]), x_ohm_per_km=float(c["x1_ohm_per_km"]),
            c_nf_per_km=0.0, r0_ohm_per_km=float(c["r0_ohm_per_km"]),
            x0_ohm_per_km=float(c["x0_ohm_per_km"]), c0_nf_per_km=0.0, max_i_ka=10.0,
            name=r["line"],
        )
    loads = read_csv(os.path.join(base, "loads.csv"))
    index = []
    for r in loads:
        ph = r["phase"]
        kw = float(r["kw_nom"])
        kwargs = {"p_%s_mw" % p: 0.0 for p in "abc"}
        kwargs.update({"q_%s_mvar" % p: 0.0 for p in "abc"})
        kwargs["p_%s_mw" % ph] = kw / 1e3
        kwargs["q_%s_mvar" % ph] = kw / 1e3 * 0.328684
        index.append((pp.create_asymmetric_load(net, bus[r["bus"].lower()], type="wye",
                                                name=r["load"], **kwargs), ph, r))
    return net, index


def set_loads(net, index, kw_of):
    """Sets each load's phase power from kw_of(row) [kW] at PF 0.95."""
    for i, ph, r in index:
        kw = kw_of(r)
        net.asymmetric_load.at[i, "p_%s_mw" % ph] = kw / 1e3
        net.asymmetric_load.at[i, "q_%s_mvar" % ph] = kw / 1e3 * 0.328684


def pandapower_(refdata, ref, minutes):
    import pandapower as pp

    warnings.simplefilter("ignore")
    parse = statistics.median(timed(lambda: build_pandapower(refdata))[0] for _ in range(3))
    net, index = build_pandapower(refdata)
    snaps = [timed(lambda: pp.runpp_3ph(net))[0] for _ in range(10)]

    m566 = {r["load"].lower(): float(r["p_kw"])
            for r in read_csv(os.path.join(refdata, "ieee_eu_lv", "loads_m566.csv"))}
    set_loads(net, index, lambda r: m566[r["load"].lower()])
    pp.runpp_3ph(net)
    got = {}
    vbase = {b: net.bus.at[b, "vn_kv"] * 1e3 / math.sqrt(3) for b in net.bus.index}
    for b in net.bus.index:
        name = net.bus.at[b, "name"].lower()
        for p in "abc":
            got[(name, p)] = net.res_bus_3ph.at[b, "vm_%s_pu" % p] * vbase[b]
    dv, compared = max_dv(got, ref)

    # The day: each minute's loads from the load profiles, one runpp_3ph
    # each; `minutes` of them, timed per step.
    profiles = read_csv(os.path.join(refdata, "ieee_eu_lv", "load_profiles.csv"))
    steps = []
    for m in range(minutes):
        row = profiles[m]
        set_loads(net, index, lambda r: float(row[r["loadshape"]]) * float(r["kw_nom"]))
        steps.append(timed(lambda: pp.runpp_3ph(net))[0])
    return {
        "version": pp.__version__,
        "parse_s": parse,
        "snapshot_s": statistics.median(snaps),
        "resolve_s": statistics.median(steps),
        "day_minutes_run": minutes,
        "day_s_extrapolated": statistics.median(steps) * 1440,
        "day_s_measured_part": sum(steps),
        "max_dv_v": dv,
        "compared": compared,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("refdata")
    ap.add_argument("--pp-minutes", type=int, default=120,
                    help="minutes of the day pandapower runs (the day is extrapolated)")
    args = ap.parse_args()
    ref = reference_voltages(args.refdata)
    out = {"opendss": opendss(args.refdata, ref),
           "pandapower": pandapower_(args.refdata, ref, args.pp_minutes)}
    try:
        import numba
        out["pandapower"]["numba"] = numba.__version__
    except ImportError:
        out["pandapower"]["numba"] = None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
