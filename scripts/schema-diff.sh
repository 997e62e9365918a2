#!/usr/bin/env bash
# Compares the management schema an amqp-mesh router serves (GET-JSON-SCHEMA, through qdmanage)
# with qdrouterd 1.19's own (QdSchema().dump()), from a qdrouterd build such as the yardstick's
# (../shared/yardsticks/qdrouterd/build.sh puts one in /opt/qdrouterd-1.19). Prints every
# structural difference (types, defaults, required, graph, operations, attributes present), then
# how many descriptions qdrouterd's has (amqp-mesh serves none: router/management/schema.ts says
# why). Run after `npm run build`:
#
#   bash scripts/schema-diff.sh            QD_HOME=/path/to/build to use another
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
QD_HOME=${QD_HOME:-/opt/qdrouterd-1.19}
[ -f "$QD_HOME/env.sh" ] || { echo "schema-diff.sh: no qdrouterd build at $QD_HOME (QD_HOME=...)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
printf 'router {\n    mode: standalone\n    id: SchemaDiff\n}\nlistener {\n    host: 127.0.0.1\n    port: 0\n}\n' > "$work/r.conf"
node bin/amqp-mesh.js router -c "$work/r.conf" > "$work/log" 2>&1 & pid=$!
for _ in $(seq 100); do port=$(sed -nE 's/.*Listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$work/log" | head -1); [ -n "$port" ] && break; sleep 0.1; done
[ -n "${port:-}" ] || { cat "$work/log" >&2; exit 1; }
(
  # shellcheck disable=SC1091
  . "$QD_HOME/env.sh"
  qdmanage -b "127.0.0.1:$port" get-json-schema > "$work/ours.json"
  /usr/bin/python3 - "$work/ours.json" <<'EOF'
import json, sys
import system_test  # noqa: F401  (sets up qdrouterd's python path as its own tests do)
from qpid_dispatch_internal.management.qdrouter import QdSchema

ref = json.loads(json.dumps(QdSchema().dump()))
ours = json.load(open(sys.argv[1]))

def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k != 'description'}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x

diffs = []
def walk(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                diffs.append((path + '/' + k, 'only in amqp-mesh', b[k]))
            elif k not in b:
                diffs.append((path + '/' + k, 'only in qdrouterd', a[k]))
            else:
                walk(a[k], b[k], path + '/' + k)
    elif a != b:
        diffs.append((path, 'qdrouterd: %s' % json.dumps(a), 'amqp-mesh: %s' % json.dumps(b)))

walk(strip(ref), strip(ours), '')
for d in diffs:
    print('  '.join(str(x) for x in d))
described = sum(1 for t in ref['entityTypes'].values() for a in t.get('attributes', {}).values() if a.get('description')) \
    + sum(1 for t in ref['entityTypes'].values() if t.get('description'))
print('%d structural differences; %d descriptions in qdrouterd\'s schema, none served by amqp-mesh' % (len(diffs), described))
EOF
)
