#!/usr/bin/env python3
"""Root-cause tags for the divergences of a bench/corpus/run.py results dir.

Usage: bench/corpus/triage.py RESULTS_DIR [-v]

Heuristic, written from the causes found on the corpus (see repros/README.md): every
`different` case is tagged from the parsed objects (yamlsubset), every `equivalent` case
from the hunks of its diff.txt. Anything no rule explains is listed as UNTAGGED, so new
causes show up instead of being hidden. -v lists the dirs under each cause.
"""
import collections
import glob
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402
import yamlsubset  # noqa: E402


def walk(a, b, path, out):
    if type(a) != type(b):
        out.append((path, a, b)); return
    if isinstance(a, dict):
        for k in set(a) | set(b):
            kk = k[1] if isinstance(k, tuple) else k
            if k not in b: out.append((f'{path}/{kk}', a[k], '<absent>'))
            elif k not in a: out.append((f'{path}/{kk}', '<absent>', b[k]))
            else: walk(a[k], b[k], f'{path}/{kk}', out)
    elif isinstance(a, list):
        if len(a) != len(b): out.append((path, f'len {len(a)}', f'len {len(b)}')); return
        for i, (x, y) in enumerate(zip(a, b)): walk(x, y, f'{path}[{i}]', out)
    elif a != b:
        out.append((path, a, b))
def tag(p, a, b):
    s = lambda v: v[1] if isinstance(v, tuple) and v[0]=='str' else None
    if p.endswith('/metadata/annotations') and a == '<absent>' and b in (None, {}): return 'C6 annotations-empty-dropped'
    if p.endswith('/data') and a == {} and b == '<absent>': return 'C4 generator-empty-data'
    if a == '<absent>' and b is None: return 'C7 smp-patch-drops-nulls'
    if isinstance(a, dict) and a == {} and isinstance(b, dict) and all(v is None for v in b.values()): return 'C7 smp-patch-drops-nulls'
    if '/[' in p: return 'C3 replacement-bracketed-key'
    if s(a) is not None and s(b) is not None:
        if s(b) == s(a) + '\n': return 'C8 block-scalar-at-eof'
    return None


def hunks(path):
    cur = None
    for line in open(path, errors='replace'):
        if line.startswith('@@'):
            if cur: yield cur
            cur = ([], [])
        elif cur is not None:
            if line.startswith('-'): cur[0].append(line[1:].rstrip('\n'))
            elif line.startswith('+'): cur[1].append(line[1:].rstrip('\n'))
            elif line.startswith(' '):
                if cur[0] or cur[1]:
                    yield cur; cur = ([], [])
    if cur: yield cur
TS = re.compile(r'"\d{4}-\d\d-\d\d')


TS = re.compile(r'"\d{4}-\d\d-\d\d')


def main():
    base = sys.argv[1]
    causes = collections.defaultdict(set)
    untagged = []
    for cf in sorted(glob.glob(base + '/cases/*/case.txt'), key=lambda p: int(p.split('/')[-2])):
        repo, case, cls, note = open(cf).read().rstrip('\n').split('\t', 3)
        if cls != 'different': continue
        d = os.path.dirname(cf)
        A = yamlsubset.load_all(open(d + '/oracle.yaml').read())
        B = yamlsubset.load_all(open(d + '/lookctl.yaml').read())
        ia = [run.obj_id(x) for x in A]; ib = [run.obj_id(x) for x in B]
        tags = set()
        if ia != ib:
            strip = lambda i: i.split('/')[0] + '/' + i.split('/')[2]
            if [strip(x) for x in ia] == [strip(x) for x in ib] and all(x.split('/')[0] in ('FlowSchema', 'PriorityLevelConfiguration') for x, y in zip(ia, ib) if x != y):
                tags.add('C11 namespace-flowcontrol-v1')
            else:
                untagged.append((repo, case, 'objects differ: ' + note)); continue
        pend = []
        for x, y in zip(A, B):
            out = []
            walk(x, y, run.obj_id(x), out)
            for p, a, b in out:
                if p.endswith('/metadata/namespace') and p.split('/')[0] in ('FlowSchema', 'PriorityLevelConfiguration'):
                    continue
                t = tag(p, a, b)
                if t: tags.add(t)
                else: pend.append((p, a, b))
        for p, a, b in pend:
            if 'C3 replacement-bracketed-key' in tags and p.endswith('inject-ca-from'):
                continue
            s_ = lambda v: v[1] if isinstance(v, tuple) else ''
            ov, lv = s_(a), s_(b)
            # vars fieldref ignored: lookctl put the object name where the namespace belongs
            if isinstance(ov, str) and isinstance(lv, str) and ov != lv and len(lv) > len(ov) - 40:
                parts = re.split(r'[./]', lv)
                if any(parts[i] == parts[i+1] for i in range(len(parts)-1)) or any(x and x in ov.split('/')[-1:] for x in parts[:1]) and '/' in ov and ov.split('/')[0] != lv.split('/')[0]:
                    tags.add('C5 vars-fieldref'); continue
            untagged.append((repo, case, f'{p}: {run.short(a)} vs {run.short(b)}'))
        for t in tags: causes['different: ' + t].add(f'{repo}:{case}')
    cats = causes
    for cf in glob.glob(base + '/cases/*/case.txt'):
        repo, case, cls, note = open(cf).read().rstrip('\n').split('\t', 3)
        if cls != 'equivalent': continue
        d = os.path.dirname(cf)
        kinds = set()
        for A, B in hunks(d + '/diff.txt'):
            if not A and not B: continue
            ja = ''.join(x.strip() for x in A).replace('\\ ', ' ').replace(' ', ''); jb = ''.join(x.strip() for x in B).replace(' ', '')
            if sorted(A) == sorted(B): kinds.add('C9 key-order-natural'); continue
            if not A or not B:
                kinds.add('C9 key-order-natural (moved lines)'); continue
            if len(A) > len(B) and ja == jb: kinds.add('C1 long-line-folding'); continue
            if any(TS.search(x) for x in A) and [x.replace('"', '') for x in A] == B: kinds.add('C2 timestamp-string-quoting'); continue
            if any('\\t' in x for x in A) and any(x.strip().endswith('|-') or x.strip().endswith('|') for x in B): kinds.add('C10 tab-line-double-quoted'); continue
            if any(x.lstrip().startswith('- - ') for x in A) and any(x.strip() == '-' for x in B): kinds.add('C12 nested-sequence-compact'); continue
            if len(A) > len(B): kinds.add('C1 long-line-folding (mixed)'); continue
            kinds.add('other: ' + A[0].strip()[:60] + ' || ' + B[0].strip()[:60])
        for k in kinds: cats['equivalent: ' + k].add(f'{repo}:{case}')
    for t, v in sorted(causes.items(), key=lambda kv: (kv[0].split(':')[0], -len(kv[1]))):
        print(f"{len(v):4}  {t}")
        if '-v' in sys.argv:
            for x in sorted(v):
                print('        ', x)
    print('UNTAGGED')
    for u in untagged:
        print('  ', '\t'.join(u)[:300])


if __name__ == "__main__":
    main()
