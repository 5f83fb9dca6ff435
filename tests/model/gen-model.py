#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
gen-model.py: the Promela transition table of the conversion engine, generated from its C source.

Reads the enums of daemon/twopc.h and the rows of twopc_table[] in daemon/twopc.c (as text: nothing is
compiled or linked) and writes a Promela file with a #define per state, event and action and one
inline, twopc_lookup(), that maps (state, event) to (next state, action) exactly as lookup() in
twopc.c does. tests/model/conversion.pml #includes it, so a change to the C table changes the model.

The model is read too, to refuse a table it does not implement:
  - every action of a row must be dispatched by the model (a line "act == TA_X" in conversion.pml);
  - every event of a row must be fed or raised by the model (feed(TE_X, ...) or raise(TE_X, ...));
  - every state must have a phase, declared in conversion.pml by a comment "@phase TP_X PH_Y" (the
    model's meaning of the state: undecided, deciding, committing, committed or aborted);
  - a name the model uses that the C source no longer has is an error as well (the model is stale).
Any of these is an error (exit 1) naming what is missing.

--drop FROM,EVENT and --set FROM,EVENT=TO,ACTION change the generated table (never the C source):
that is how a seeded bug is a variant of the table. Names may omit the TP_/TE_/TA_ prefix.
"""
import argparse
import os
import re
import sys

PHASES = ("PH_UNDECIDED", "PH_DECIDING", "PH_COMMITTING", "PH_COMMITTED", "PH_ABORTED")


class GenError(Exception):
    pass


def strip_comments(text):
    """C source without comments (line structure kept, so errors can name lines)."""
    def repl(m):
        s = m.group(0)
        if s.startswith("/"):
            return re.sub(r"[^\n]", " ", s)
        return s  # a string or char literal
    pattern = r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\''
    return re.sub(pattern, repl, text, flags=re.S)


def parse_enum(text, name, path):
    """The members of enum <name> in declaration order, as (name, value); '_'-prefixed sentinels dropped."""
    m = re.search(r"\benum\s+" + re.escape(name) + r"\s*\{(.*?)\}\s*;", text, flags=re.S)
    if not m:
        raise GenError(f"{path}: enum {name} not found")
    members = []
    value = -1
    for item in m.group(1).split(","):
        item = item.strip()
        if not item:
            continue
        mm = re.fullmatch(r"([A-Za-z_]\w*)\s*(?:=\s*(.+))?", item, flags=re.S)
        if not mm:
            raise GenError(f"{path}: enum {name}: cannot parse member {item!r}")
        if mm.group(2) is not None:
            try:
                value = int(mm.group(2).strip(), 0)
            except ValueError:
                raise GenError(f"{path}: enum {name}: member {mm.group(1)} has a value the generator "
                               f"cannot evaluate: {mm.group(2).strip()!r}")
        else:
            value += 1
        if not mm.group(1).startswith("_"):
            members.append((mm.group(1), value))
    if not members:
        raise GenError(f"{path}: enum {name} has no members")
    return members


def parse_table(text, path):
    """The rows of twopc_table[] as (from, event, to, action, line)."""
    m = re.search(r"\btwopc_table\s*\[\s*\]\s*=\s*\{", text)
    if not m:
        raise GenError(f"{path}: the definition of twopc_table[] was not found")
    # the initializer: up to the brace that closes the one opened above
    depth, i = 1, m.end()
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    if depth:
        raise GenError(f"{path}: twopc_table[] is not closed")
    body_start = m.end()
    body = text[body_start:i - 1]
    rows = []
    pos = 0
    row_re = re.compile(r"\{\s*([^{}]*?)\s*\}\s*,?", flags=re.S)
    while True:
        rest = body[pos:]
        if not rest.strip():
            break
        rm = row_re.match(rest.lstrip())
        if not rm:
            line = text.count("\n", 0, body_start + pos) + 1
            raise GenError(f"{path}:{line}: cannot parse a row of twopc_table[] near {rest.strip()[:60]!r}")
        skipped = len(rest) - len(rest.lstrip())
        fields = [f.strip() for f in rm.group(1).split(",") if f.strip()]
        line = text.count("\n", 0, body_start + pos + skipped) + 1
        if len(fields) == 4 and all(f.startswith(".") for f in fields):
            # designated initializers: { .from = X, .event = Y, .to = Z, .action = W }
            d = {}
            for f in fields:
                dm = re.fullmatch(r"\.(\w+)\s*=\s*(\w+)", f)
                if not dm:
                    raise GenError(f"{path}:{line}: cannot parse {f!r}")
                d[dm.group(1)] = dm.group(2)
            try:
                fields = [d["from"], d["event"], d["to"], d["action"]]
            except KeyError as e:
                raise GenError(f"{path}:{line}: row lacks field {e}")
        if len(fields) != 4 or not all(re.fullmatch(r"[A-Za-z_]\w*", f) for f in fields):
            raise GenError(f"{path}:{line}: a row of twopc_table[] must be 4 names, got {rm.group(1)!r}")
        rows.append((fields[0], fields[1], fields[2], fields[3], line))
        pos += skipped + rm.end()
    if not rows:
        raise GenError(f"{path}: twopc_table[] is empty")
    return rows


def scan_model(text):
    """What conversion.pml implements: dispatched actions, fed or raised events, declared phases."""
    code = strip_comments(text)
    actions = set(re.findall(r"\bact\s*==\s*(TA_\w+)", code))
    events = set(re.findall(r"\b(?:feed|raise)\s*\(\s*(TE_\w+)", code))
    phases = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        for pm in re.finditer(r"@phase\s+(\w+)\s+(\w+)", line):
            st, ph = pm.group(1), pm.group(2)
            if ph not in PHASES:
                raise GenError(f"model:{line_no}: @phase {st} {ph}: the phase must be one of {', '.join(PHASES)}")
            if st in phases and phases[st] != ph:
                raise GenError(f"model:{line_no}: @phase {st} is declared twice")
            phases[st] = ph
    return actions, events, phases


def with_prefix(name, prefix):
    return name if name.startswith(prefix) else prefix + name


def apply_variants(rows, drops, sets):
    rows = list(rows)
    for d in drops:
        parts = d.split(",")
        if len(parts) != 2:
            raise GenError(f"--drop {d!r}: expected FROM,EVENT")
        frm, ev = with_prefix(parts[0].strip(), "TP_"), with_prefix(parts[1].strip(), "TE_")
        n = len(rows)
        rows = [r for r in rows if not (r[0] == frm and r[1] == ev)]
        if len(rows) == n:
            raise GenError(f"--drop {d!r}: the table has no row ({frm}, {ev})")
    for s in sets:
        m = re.fullmatch(r"\s*(\w+)\s*,\s*(\w+)\s*=\s*(\w+)\s*,\s*(\w+)\s*", s)
        if not m:
            raise GenError(f"--set {s!r}: expected FROM,EVENT=TO,ACTION")
        frm, ev = with_prefix(m.group(1), "TP_"), with_prefix(m.group(2), "TE_")
        to, act = with_prefix(m.group(3), "TP_"), with_prefix(m.group(4), "TA_")
        for k, r in enumerate(rows):
            if r[0] == frm and r[1] == ev:
                rows[k] = (frm, ev, to, act, r[4])
                break
        else:
            rows.append((frm, ev, to, act, 0))
    return rows


def generate(h_path, c_path, model_path, drops=(), sets=()):
    with open(h_path) as f:
        h_text = strip_comments(f.read())
    with open(c_path) as f:
        c_text = strip_comments(f.read())
    with open(model_path) as f:
        model_text = f.read()

    states = parse_enum(h_text, "twopc_state", h_path)
    events = parse_enum(h_text, "twopc_event", h_path)
    actions = parse_enum(h_text, "twopc_action", h_path)
    pstates = parse_enum(h_text, "twopc_pstate", h_path)
    c_rows = parse_table(c_text, c_path)
    rows = apply_variants(c_rows, drops, sets)

    state_names = {n for n, _ in states}
    event_names = {n for n, _ in events}
    action_names = {n for n, _ in actions}
    m_actions, m_events, m_phases = scan_model(model_text)

    errors = []
    seen = {}
    for frm, ev, to, act, line in rows:
        where = f"{c_path}:{line}" if line else "--set"
        for name, kind, names in ((frm, "state", state_names), (ev, "event", event_names),
                                  (to, "state", state_names), (act, "action", action_names)):
            if name not in names:
                errors.append(f"{where}: {name} is not a member of enum twopc_{kind} in {h_path}")
        if (frm, ev) in seen:
            errors.append(f"{where}: a second row for ({frm}, {ev}) (the first is at line {seen[(frm, ev)]}): "
                          f"lookup() would never take it")
        seen.setdefault((frm, ev), line)
        if act in action_names and act not in m_actions:
            errors.append(f"{where}: row ({frm}, {ev}) -> ({to}, {act}): the model does not implement "
                          f"action {act} (no 'act == {act}' in {model_path})")
        if ev in event_names and ev not in m_events:
            errors.append(f"{where}: row ({frm}, {ev}) -> ({to}, {act}): the model never feeds or raises "
                          f"event {ev} (no 'feed({ev}' or 'raise({ev}' in {model_path})")
    for name, _ in states:
        if name not in m_phases:
            errors.append(f"{h_path}: state {name} has no phase in the model (add '@phase {name} PH_...' "
                          f"to {model_path})")
    for name in sorted(set(m_phases) - state_names):
        errors.append(f"{model_path}: @phase {name}: no such state in enum twopc_state (the model is stale)")
    for name in sorted(m_actions - action_names):
        errors.append(f"{model_path}: implements {name}, which enum twopc_action no longer has (stale model)")
    for name in sorted(m_events - event_names):
        errors.append(f"{model_path}: feeds {name}, which enum twopc_event no longer has (stale model)")
    if errors:
        raise GenError("the C table and the model disagree:\n  " + "\n  ".join(errors))

    rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(model_path)) + "/../..")
    out = []
    out.append("/* Generated by tests/model/gen-model.py from %s and %s: do not edit. */" % (rel(h_path), rel(c_path)))
    if drops or sets:
        out.append("/* A VARIANT of the C table (a seeded bug): %s */" %
                   "; ".join([f"drop {d}" for d in drops] + [f"set {s}" for s in sets]))
    out.append("")
    for title, members in (("state", states), ("event", events), ("action", actions), ("pstate", pstates)):
        out.append(f"/* enum twopc_{title} */")
        for n, v in members:
            out.append(f"#define {n} {v}")
        out.append("")
    out.append(f"#define TWOPC_N_STATES {len(states)}")
    out.append(f"#define TWOPC_N_EVENTS {len(events)}")
    out.append(f"#define TWOPC_TABLE_LEN {len(rows)}")
    out.append("")
    out.append("/* The model's meaning of each state, from the @phase lines of conversion.pml. */")
    for i, p in enumerate(PHASES):
        out.append(f"#define {p} {i}")
    expr = "PH_ABORTED"
    for n, _ in reversed(states):
        expr = f"((s) == {n} -> {m_phases[n]} : {expr})"
    out.append(f"#define PHASE_OF(s) {expr}")
    out.append("")
    out.append("/* Whether the table has a row for (s, e). */")
    out.append("#define HAS_ROW(s, e) (" + " || ".join(f"((s) == {frm} && (e) == {ev})" for frm, ev, _, _, _ in rows) + ")")
    out.append("")
    out.append("/* lookup() of twopc.c: the row for (s, e), or found = false (the event is stale). One line per")
    out.append(" * row, so pan's list of unreached lines names the rows the search never took. */")
    out.append("inline twopc_lookup(s, e, found, to, act)")
    out.append("{")
    out.append("\tif")
    for k, (frm, ev, to, act, line) in enumerate(rows):
        src = f"twopc.c:{line}" if line else "--set"
        out.append(f"\t:: (s == {frm} && e == {ev}) -> found = true; to = {to}; act = {act} /* row {k}: {frm}:{ev} {src} */")
    out.append("\t:: else -> found = false")
    out.append("\tfi")
    out.append("}")
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--header", required=True, help="daemon/twopc.h")
    ap.add_argument("--source", required=True, help="daemon/twopc.c")
    ap.add_argument("--model", required=True, help="tests/model/conversion.pml")
    ap.add_argument("-o", "--output", help="where to write the Promela table (default: stdout)")
    ap.add_argument("--drop", action="append", default=[], metavar="FROM,EVENT",
                    help="leave this row out of the generated table (a seeded bug)")
    ap.add_argument("--set", action="append", default=[], metavar="FROM,EVENT=TO,ACTION",
                    help="replace (or add) this row in the generated table (a seeded bug)")
    args = ap.parse_args()
    try:
        text = generate(args.header, args.source, args.model, args.drop, args.set)
    except (GenError, OSError) as e:
        print(f"gen-model.py: {e}", file=sys.stderr)
        return 1
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
