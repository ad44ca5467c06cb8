"""Turns the JSON files of benches/peers/run.sh into markdown tables with
ratios (peer time / gridtwin time: above 1, gridtwin is faster).

    python report.py OUT_DIR REFDATA
"""

import csv
import json
import os
import platform
import subprocess
import sys


def load(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def fmt(s):
    if s is None:
        return "-"
    if s >= 1:
        return "%.2f s" % s
    if s >= 1e-3:
        return "%.2f ms" % (s * 1e3)
    return "%.0f µs" % (s * 1e6)


def ratio(peer, ours):
    return "-" if peer is None else "%.1f×" % (peer / ours)


def gridtwin_dv(gt, refdata):
    """Largest |V - V_ref| [V] of gridtwin at minute 566 over the LV buses."""
    with open(os.path.join(refdata, "ieee_eu_lv", "voltages_m566.csv")) as f:
        ref = {(r["bus"].lower(), r["phase"]): float(r["vm_v"]) for r in csv.DictReader(f)}
    worst = 0.0
    for (bus, ph), v in ref.items():
        if bus == "sourcebus" or bus not in gt["v_m566"]:
            continue
        worst = max(worst, abs(gt["v_m566"][bus]["abc".index(ph)] - v))
    return worst


def main():
    out, refdata = sys.argv[1], sys.argv[2]
    gt = load(out, "gridtwin_eu_lv.json")
    peers = load(out, "peers_eu_lv.json")
    od, pp = peers["opendss"], peers["pandapower"]
    cpu = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    print("Machine: %s, %d cores, Python %s, %s" % (
        cpu, os.cpu_count(), platform.python_version(),
        subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()))
    print()
    print("OpenDSS: " + od["version"].replace("\n", "; "))
    print("pandapower %s (numba %s)" % (pp["version"], pp["numba"]))
    print()
    print("| EU LV task | gridtwin | OpenDSS | pandapower | OpenDSS / gridtwin | pandapower / gridtwin |")
    print("|---|---|---|---|---|---|")
    rows = [
        ("import (parse, build)", gt["parse_s"], od["parse_s"], pp["parse_s"]),
        ("snapshot solve, cold", gt["snapshot_s"], od["snapshot_s"], pp["snapshot_s"]),
        ("re-solve after a load change", gt["resolve_s"], od["resolve_s"], pp["resolve_s"]),
        ("1440-minute day", gt["day_s"], od["day_s"], pp["day_s_extrapolated"]),
        ("1440-minute day, OpenDSS with its 1 810 monitors", gt["day_s"],
         od["day_monitored_s"], None),
    ]
    for name, ours, o, p in rows:
        print("| %s | %s | %s | %s | %s | %s |" % (
            name, fmt(ours), fmt(o), fmt(p), ratio(o, ours), ratio(p, ours)))
    print()
    print("pandapower's day: %d minutes run (%s), x 1440 / %d." % (
        pp["day_minutes_run"], fmt(pp["day_s_measured_part"]), pp["day_minutes_run"]))
    print("Largest |V - V_ref| at minute 566 over %d LV bus-phases (reference: OpenDSS, "
          "voltages_m566.csv): gridtwin %.2g V, OpenDSS %.2g V, pandapower %.2g V." % (
              od["compared"], gridtwin_dv(gt, refdata), od["max_dv_v"], pp["max_dv_v"]))
    print()
    print("| hold model, N pending | gridtwin ns/event | SimPy ns/event | SimPy / gridtwin |")
    print("|---|---|---|---|")
    simpy_version = None
    for n in (1000, 100000):
        g = load(out, "hold_gridtwin_%d.json" % n)
        s = load(out, "hold_simpy_%d.json" % n)
        simpy_version = s["simpy"]
        print("| %d | %.1f (%d events) | %.0f (%d events) | %.1f× |" % (
            n, g["ns_per_event"], g["events"], s["ns_per_event"], s["events"],
            s["ns_per_event"] / g["ns_per_event"]))
    print()
    print("SimPy %s." % simpy_version)


if __name__ == "__main__":
    main()
