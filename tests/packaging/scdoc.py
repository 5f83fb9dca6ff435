# SPDX-License-Identifier: MIT
# What the packaging checks read from an scdoc page: its sections and the entries they list.
import re


def sections(text):
    """{'COMMANDS': [lines], ...}: the lines under each '# NAME' heading."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r'^# (.+)$', line)
        if m:
            cur = m.group(1).strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def entries(lines):
    """Names of the entries of a section: lines '*name*' or '*name* ARGS...' at column 0."""
    return [m.group(1) for m in (re.match(r'^\*([A-Za-z0-9_-]+)\*(?:\s|$)', l) for l in lines) if m]


def headings(lines):
    """Names under '## a, b' sub-headings."""
    names = []
    for l in lines:
        m = re.match(r'^## (.+)$', l)
        if m:
            names += [n.strip() for n in m.group(1).split(',')]
    return names
