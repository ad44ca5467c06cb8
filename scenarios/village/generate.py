#!/usr/bin/env python3
"""Writes the village feeder of `scenarios/default.ron` in OpenDSS format.

A rural European village behind one 11/0.416 kV, 400 kVA Dyn11 pole-mounted
transformer: three overhead feeders leave the LV board, each a main street of
poles with side streets branching at 13 junction poles (an LMU sits on every
junction pole: 39 LMUs in all). Houses hang on the poles by single-phase
service drops, phases in rotation; each takes one of the 100 measured
one-minute daily profiles of the IEEE European LV test feeder (in the
repository's `data/ieee_eu_lv/`, referenced by path, not copied).

Conductors (typical aluminium twisted aerial bundled cable, neutral of equal
section; zero-sequence from R0 ~ 4 R1 and X0 ~ 3 X1 for a return through the
neutral alone):
- main streets: 4x150 mm2 ABC, R1 0.206, X1 0.080 ohm/km;
- side streets: 4x50 mm2 ABC, R1 0.641, X1 0.086 ohm/km;
- LV board to the first pole: 4x185 mm2 underground cable, R1 0.164,
  X1 0.074, R0 0.656, X0 0.222 ohm/km.

The layout is reproducible: `python3 generate.py` rewrites the same files
byte for byte (its only randomness is `random.Random(SEED)`).
"""

import math
import random
from pathlib import Path

SEED = 7
FEEDERS = 3
JUNCTIONS_PER_FEEDER = 13
HEADINGS_DEG = [30.0, 150.0, 270.0]
PROFILES = "../../data/ieee_eu_lv/dss/Daily_1min_100profiles"

here = Path(__file__).resolve().parent
rng = random.Random(SEED)

coords = {"lvboard": (0.0, 0.0)}
lines = []  # (name, from, to, linecode, length_m)
poles = []  # pole bus names that carry houses


def step(p, heading_deg, span):
    a = math.radians(heading_deg)
    return (p[0] + span * math.cos(a), p[1] + span * math.sin(a))


for f in range(1, FEEDERS + 1):
    n = 0
    line_n = 0

    def pole(frm, pos, code, span):
        global n, line_n
        n += 1
        line_n += 1
        name = f"f{f}p{n}"
        coords[name] = pos
        lines.append((f"f{f}l{line_n}", frm, name, code, span))
        poles.append(name)
        return name

    heading = HEADINGS_DEG[f - 1]
    prev = pole("lvboard", step((0.0, 0.0), heading, 40.0), "ug185", 40.0)
    pos = coords[prev]
    side = 1
    for j in range(JUNCTIONS_PER_FEEDER):
        for _ in range(rng.choice([0, 0, 1])):
            span = rng.uniform(30.0, 35.0)
            heading_j = heading + rng.uniform(-8.0, 8.0)
            pos = step(pos, heading_j, span)
            prev = pole(prev, pos, "abc150", span)
        span = rng.uniform(30.0, 35.0)
        pos = step(pos, heading + rng.uniform(-8.0, 8.0), span)
        junction = pole(prev, pos, "abc150", span)
        # The side street, perpendicular, on alternate sides.
        s_prev, s_pos = junction, pos
        s_heading = heading + side * 90.0
        side = -side
        for _ in range(rng.randint(1, 3)):
            s_span = rng.uniform(25.0, 30.0)
            s_pos = step(s_pos, s_heading + rng.uniform(-10.0, 10.0), s_span)
            s_prev = pole(s_prev, s_pos, "abc50", s_span)
        prev = junction
    for _ in range(2):
        span = rng.uniform(30.0, 35.0)
        pos = step(pos, heading + rng.uniform(-8.0, 8.0), span)
        prev = pole(prev, pos, "abc150", span)

houses = []  # (name, bus, phase, shape)
phase = rng.randrange(3)
for p in poles:
    for _ in range(rng.choice([0, 1, 1, 2, 2])):
        houses.append((f"house{len(houses) + 1}", p, phase + 1, rng.randint(1, 100)))
        phase = (phase + 1) % 3

header = "! Written by generate.py: the village feeder of scenarios/default.ron.\n"


def write(name, body):
    (here / name).write_text(header + body)


write(
    "Master.dss",
    "clear\n"
    "Set DefaultBaseFrequency=50\n"
    "New circuit.Village\n"
    "Edit Vsource.Source BasekV=11 pu=1.0 ISC3=3000 ISC1=5\n"
    "Redirect LineCode.txt\n"
    "Redirect LoadShapes.txt\n"
    "Redirect Lines.txt\n"
    "Redirect Transformers.txt\n"
    "Redirect Loads.txt\n"
    "Set voltagebases=[11 .416]\n"
    "Calcvoltagebases\n"
    "buscoords Buscoords.txt\n"
    "solve\n",
)
write(
    "LineCode.txt",
    "New LineCode.abc150 nphases=3 R1=0.206 X1=0.080 R0=0.824 X0=0.240 C1=0 C0=0 Units=km\n"
    "New LineCode.abc50 nphases=3 R1=0.641 X1=0.086 R0=2.564 X0=0.258 C1=0 C0=0 Units=km\n"
    "New LineCode.ug185 nphases=3 R1=0.164 X1=0.074 R0=0.656 X0=0.222 C1=0 C0=0 Units=km\n",
)
write(
    "Transformers.txt",
    "New Transformer.TR1 Buses=[SourceBus lvboard] Conns=[Delta Wye] kVs=[11 0.416] "
    "kVAs=[400 400] XHL=4 %loadloss=1.2 sub=y\n",
)
write(
    "Lines.txt",
    "".join(
        f"New Line.{n} Bus1={a} Bus2={b} phases=3 Linecode={c} Length={l:.1f} Units=m\n"
        for n, a, b, c, l in lines
    ),
)
shapes = sorted({s for _, _, _, s in houses})
write(
    "LoadShapes.txt",
    "".join(
        f"New Loadshape.Shape_{s} npts=1440 minterval=1 "
        f"mult=(file={PROFILES}/load_profile_{s}.txt) useactual=true\n"
        for s in shapes
    ),
)
write(
    "Loads.txt",
    "".join(
        f"New Load.{n} Phases=1 Bus1={b}.{ph} kV=0.23 kW=1 PF=0.95 Yearly=Shape_{s}\n"
        for n, b, ph, s in houses
    ),
)
(here / "Buscoords.txt").write_text(
    "".join(f"{b} {x:.1f} {y:.1f}\n" for b, (x, y) in coords.items())
)
print(f"{len(poles)} poles, {len(lines)} lines, {len(houses)} houses, {len(shapes)} profiles")
