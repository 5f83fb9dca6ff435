#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
check-gen.py GEN TWOPC_H TWOPC_C MODEL: gen-model.py refuses a C table the model does not implement.

Copies of the C source, each changed in one way, must each make gen-model.py fail naming the change:
a row with a new action, a row with a new event, a new state, a duplicate row, a row naming something
that is not in the enums, and a model that implements a name the C source no longer has. The sources
as they are must generate.
"""
import os
import re
import subprocess
import sys
import tempfile


def run(gen, h, c, model, extra=()):
    p = subprocess.run([sys.executable, gen, "--header", h, "--source", c, "--model", model, *extra],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def add_enum_member(text, enum, member):
    m = re.search(r"(enum\s+" + enum + r"\s*\{.*?)(\n\s*_\w+\s*,)", text, flags=re.S)
    assert m, f"enum {enum} with a _MAX sentinel not found"
    return text[:m.start(2)] + f"\n\t{member}," + text[m.start(2):]


def add_row(text, row):
    m = re.search(r"twopc_table\s*\[\s*\]\s*=\s*\{", text)
    assert m, "twopc_table[] not found"
    return text[:m.end()] + f"\n\t{row}," + text[m.end():]


def main():
    gen, h, c, model = sys.argv[1:5]
    with open(h) as f:
        h_text = f.read()
    with open(c) as f:
        c_text = f.read()
    with open(model) as f:
        model_text = f.read()

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        def case(name, h_new, c_new, model_new, expect, extra=()):
            nonlocal failures
            hp, cp, mp = (os.path.join(tmp, n) for n in ("twopc.h", "twopc.c", "conversion.pml"))
            for path, text in ((hp, h_new), (cp, c_new), (mp, model_new)):
                with open(path, "w") as f:
                    f.write(text)
            rc, out, err = run(gen, hp, cp, mp, extra)
            if expect is None:
                ok = rc == 0 and "twopc_lookup" in out
            else:
                ok = rc != 0 and re.search(expect, err) is not None
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
            if not ok:
                failures += 1
                print(f"  exit {rc}, expected {'success' if expect is None else repr(expect)}; stderr:\n{err}")

        case("the sources as they are generate", h_text, c_text, model_text, None)
        case("a row with an action the model does not implement",
             add_enum_member(h_text, "twopc_action", "TA_REWIND"),
             add_row(c_text, "{ TP_WAVE1, TE_TIMEOUT, TP_PREPARING, TA_REWIND }"), model_text,
             r"does not implement action TA_REWIND")
        case("a row with an event the model never feeds",
             add_enum_member(h_text, "twopc_event", "TE_RETRY"),
             add_row(c_text, "{ TP_WAVE1, TE_RETRY, TP_WAVE1, TA_SEND_WAVE1 }"), model_text,
             r"never feeds or raises event TE_RETRY")
        case("a state without a phase in the model",
             add_enum_member(h_text, "twopc_state", "TP_RECOVERING"),
             add_row(c_text, "{ TP_RECOVERING, TE_LOGGED, TP_WAVE1, TA_SEND_WAVE1 }"), model_text,
             r"state TP_RECOVERING has no phase")
        case("a row naming what the enums lack", h_text,
             add_row(c_text, "{ TP_WAVE2, TE_ACK, TP_WAVE3, TA_RECORD_ACK }"), model_text,
             r"TP_WAVE2 is not a member of enum twopc_state")
        case("two rows for one (state, event)", h_text,
             add_row(c_text, "{ TP_WAVE3, TE_TIMEOUT, TP_ABORTED, TA_ABORT }"), model_text,
             r"a second row for \(TP_WAVE3, TE_TIMEOUT\)")
        case("a model implementing an action the C source lost", h_text, c_text,
             model_text.replace("run_action()\n{\n\tif\n",
                                "run_action()\n{\n\tif\n\t:: act == TA_GONE_NOW -> skip\n", 1),
             r"implements TA_GONE_NOW, which enum twopc_action no longer has")
        case("a model with a phase for a state the C source lost", h_text, c_text,
             model_text.replace(" * @phase TP_QUEUED PH_UNDECIDED\n",
                                " * @phase TP_QUEUED PH_UNDECIDED\n * @phase TP_LIMBO PH_UNDECIDED\n", 1),
             r"@phase TP_LIMBO: no such state")
        case("a seeded variant naming no row", h_text, c_text, model_text,
             r"--drop 'WAVE3,CANCEL': the table has no row", extra=("--drop", "WAVE3,CANCEL"))
    if failures:
        print(f"{failures} case(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
