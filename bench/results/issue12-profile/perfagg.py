import sys, re, collections
# perf script output: header line then callchain lines (leaf first), blank line between samples
def samples(path):
    cur=[]
    for line in open(path, errors='replace'):
        line=line.rstrip('\n')
        if not line.strip():
            if cur: yield cur
            cur=[]
            continue
        cur.append(line)
    if cur: yield cur
bysys=collections.Counter(); bygo=collections.Counter(); leafk=collections.Counter(); total=0
syscall_site=collections.Counter()
for s in samples(sys.argv[1]):
    total+=1
    frames=[l.split()[1] if len(l.split())>1 else '?' for l in s[1:]]
    sysf=None
    if 'do_syscall_64' in frames:
        i=frames.index('do_syscall_64')
        j=i-1
        while j>0 and frames[j] in ('x64_sys_call',):
            j-=1
        sysf=frames[j] if j>=0 else 'syscall?'
        sysf={'ksys_write':'write (TAP)','ksys_read':'read (TAP)','vfs_write':'write (TAP)','vfs_read':'read (TAP)'}.get(sysf, sysf)
    elif any(f.startswith('asm_') or f.startswith('irq') for f in frames):
        sysf='interrupt'

    # outermost vtepd function
    gof=None
    for f in frames:
        if 'vtepd/vtepd/' in f and not gof:
            gof=f.replace('github.com/vtepd/vtepd/','')
    top='runtime' if any(f.startswith('runtime.') for f in frames) and not gof else (gof or 'other')
    # outermost user frame near root with vtep pipelines
    grp='other'
    for f in frames:
        if 'txPipeline' in f or 'txLoop' in f: grp='tx pipeline'; break
        if 'rxPipeline' in f or 'rxLoop' in f: grp='rx pipeline'; break
    if grp=='other':
        if any(f.startswith('runtime.') for f in frames): grp='go runtime (scheduler, netpoll, sleep, GC)'
    bygo[grp]+=1
    bysys[(grp, sysf or 'user space')]+=1
print("samples", total)
for k,v in bygo.most_common(): print(f"{100*v/total:6.1f}%  {k}")
print()
for k,v in bysys.most_common(25): print(f"{100*v/total:6.1f}%  {k[0]:45s} {k[1]}")
