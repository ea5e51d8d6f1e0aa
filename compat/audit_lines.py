"""Reads audit lines (compat/audit.sh) and writes them comparable: session
ids replaced, each line's users sorted, and the deletions of a session's
ephemerals (its last lines) sorted, since ZooKeeper keeps a session's
identities and its ephemerals in hash sets."""

import re
import sys

lines = []
for line in sys.stdin.read().splitlines():
    fields = []
    for field in re.sub(r"session=0x[0-9a-f]+", "session=S", line).split("\t"):
        if field.startswith("user="):
            field = "user=" + ",".join(sorted(field[len("user="):].split(",")))
        fields.append(field)
    lines.append("\t".join(fields))
ended = sorted(l for l in lines if "operation=ephemeralZNodeDeletion" in l)
for line in [l for l in lines if l not in ended] + ended:
    print(line)
