#!/usr/bin/python3
"""Helpers of scripts/koji-live (run that, not this): reading the kit's hub call log for what rida
did, expiring rida's hub sessions, a fake builder that leaves repos unworked, and the scenarios
run against the kit's hub. See docs/koji.md.

  calls [--rida]        the kit's show-calls.py listing (--rida: rida's requests only), session keys redacted
  summary               rida's sessions in this run: requests, multiCalls, faults
  record [METHOD...]    rida's calls (of these methods), as recording lines (koji/testdata/live)
  expire                expire rida's hub sessions now (its login and its subsessions), as the
                        hub's SessionRenewalTimeout does
  stalled-kojid         the kit's fake builder, but it never runs repo.checkQueue (kojira's job)
                        and leaves newRepo tasks FREE
  kojiweb               Koji's web UI from Koji's source ($KOJI_SRC/www), on 127.0.0.1:18444/koji,
                        for the kit's hub (needs python3-jinja2)
  weblinks [N]          fetch every Koji web link (task_url, koji_tag_url) of rida's build N (default 1)
                        and check that Koji's web UI shows that task and that tag
  sessions              scenario: sessions expire mid-build, then SIGKILL + restart (needs `run`)
  cancel                scenario: one more build, canceled while pb's task is open (needs `run`)
  scratch               scenario: a scratch build of build 1's commit (MBS API): done, context _N,
                        scrmod-…+<id> tags and target on the hub (needs `run`)
  stalled-repo          scenario: a repo that never comes, with repo_timeout 1m (runs `run`)

Environment: W (default /tmp/kojilive), KOJI_LIVE_KIT (the kit), KOJI_SRC (Koji's source).
"""
import json, os, re, signal, subprocess, sys, time, urllib.error, urllib.request

W = os.environ.get('W', '/tmp/kojilive')
KIT = os.environ['KOJI_LIVE_KIT']
LOG = os.path.join(W, 'hublog', 'calls.jsonl')
API = 'http://127.0.0.1:18080'
HERE = os.path.dirname(os.path.abspath(__file__))
KEY_RE = re.compile(r'("session-key": ")([^"*][^"]*)(")')
# Written by the hub log as a JSON string inside JSON.
KEY_RE_ESC = re.compile(r'(\\"session-key\\": \\")([^"\\*][^"\\]*)(\\")')


def redact(s):
    return KEY_RE_ESC.sub(r'\1***\3', KEY_RE.sub(r'\1***\3', s))


def log_records():
    with open(LOG) as f:
        for line in f:
            yield json.loads(line)


def rida_sessions():
    """rida's sessions in this run, from its log: {id: 'login' | 'subsession'}."""
    out = {}
    with open(os.path.join(W, 'rida.log')) as f:
        for line in f:
            if 'msg="koji: logged in"' in line:
                m = re.search(r' method=(\w+) session_id=(\d+)', line)
                if m:
                    out[m.group(2)] = m.group(1)
            elif 'the hub refused the session' in line:  # a renewal
                m = re.search(r' session_id=(\d+) subsession=(\w+)', line)
                if m:
                    out[m.group(1)] = 'subsession' if m.group(2) == 'true' else 'login'
                else:
                    sys.exit('koji-live: cannot read a renewal line of rida.log: ' + line)
    return out


def is_rida(r, sessions):
    if r.get('sid') in sessions:
        return True
    # rida's logins are anonymous: known by the session they opened.
    if r.get('method') == 'login' and r.get('sid') is None:
        m = re.search(r'"session-id": (\d+)', r.get('result', ''))
        return bool(m and m.group(1) in sessions)
    return False


def faults_of(r):
    out = []
    if 'FAULT' in r:
        out.append((r['method'], r['FAULT']))
    for c in r.get('calls') or []:
        if c.get('FAULT'):
            out.append((c['m'], c['FAULT']))
    return out


def cmd_calls(args):
    log = LOG
    if '--rida' in args:  # rida's requests only
        import tempfile
        sessions = rida_sessions()
        tmp = tempfile.NamedTemporaryFile('w', suffix='.jsonl', delete=False)
        with tmp:
            for r in log_records():
                if is_rida(r, sessions):
                    tmp.write(json.dumps(r) + '\n')
        log = tmp.name
    out = subprocess.run([os.path.join(KIT, 'show-calls.py'), log], capture_output=True, text=True, check=True).stdout
    if log != LOG:
        os.remove(log)
    sys.stdout.write(redact(out))


def cmd_summary(_):
    sessions = rida_sessions()
    per = {}
    all_faults, rida_faults = [], []
    for r in log_records():
        all_faults += faults_of(r)
        if not is_rida(r, sessions):
            continue
        sid = r.get('sid') or 'anonymous (login)'
        s = per.setdefault(sid, {'requests': 0, 'multicalls': 0, 'in_multicalls': 0, 'faults': 0, 'methods': {}})
        s['requests'] += 1
        if r.get('calls') is not None:
            s['multicalls'] += 1
            s['in_multicalls'] += len(r['calls'])
        s['methods'][r['method']] = s['methods'].get(r['method'], 0) + 1
        f = faults_of(r)
        s['faults'] += len(f)
        rida_faults += f
    total = sum(s['requests'] for s in per.values())
    print('rida: %d requests, %d multiCalls, %d faults, in %d sessions' % (
        total, sum(s['multicalls'] for s in per.values()), len(rida_faults), len(sessions)))
    for sid, s in sorted(per.items(), key=lambda kv: (not kv[0].isdigit(), int(kv[0]) if kv[0].isdigit() else 0)):
        kind = sessions.get(sid, '')
        print('  session %s %s: %d requests (%d multiCalls with %d calls), %d faults; %s' % (
            sid, kind, s['requests'], s['multicalls'], s['in_multicalls'], s['faults'],
            ', '.join('%s %d' % kv for kv in sorted(s['methods'].items()))))
    for m, f in rida_faults:
        print('  rida fault:', m, f)
    print('whole log (rida, the fake builder, the seeding): %d faults' % len(all_faults))


def cmd_record(methods):
    """Recording lines for koji/testdata/live: the hub log's fields but t and dur, keys redacted."""
    sessions = rida_sessions()
    for r in log_records():
        if not is_rida(r, sessions):
            continue
        if not methods or r['method'] in methods or any(c['m'] in methods for c in r.get('calls') or []):
            r.pop('t', None)
            r.pop('dur', None)
            print(redact(json.dumps(r, sort_keys=True)))


def psql(sql):
    # The kit's database, with the credentials its own scripts use (setup-db.sh, fake-kojid.py).
    return subprocess.run(['psql', '-qtA', '-h', '127.0.0.1', '-U', 'koji', '-d', 'kojirida', '-c', sql],
                          env={**os.environ, 'PGPASSWORD': 'kojidbpass'}, capture_output=True, text=True, check=True).stdout


def cmd_expire(_):
    masters = [sid for sid, kind in rida_sessions().items() if kind == 'login']
    if not masters:
        sys.exit('koji-live: no rida login in %s/rida.log' % W)
    m = masters[-1]
    # What the hub does itself once a session is older than SessionRenewalTimeout
    # (kojihub/auth.py: expired = TRUE WHERE id = %(id)s OR master = %(id)s).
    rows = psql("UPDATE sessions SET expired = TRUE WHERE (id = %d OR master = %d) AND NOT closed RETURNING id" % (int(m), int(m)))
    print('expired rida sessions', rows.split(), '(login %s and its subsessions)' % m)


def cmd_stalled_kojid(args):
    """The kit's fake-kojid.py with a Session that skips repo.checkQueue and hides newRepo tasks."""
    sys.path.insert(0, KIT)
    import kojisess

    class StalledSession(kojisess.Session):
        def call(self, method, *a, **kw):
            if method == 'repo.checkQueue':
                return None
            out = super().call(method, *a, **kw)
            if method == 'listTasks':
                out = [t for t in out if t.get('method') != 'newRepo']
            return out

    kojisess.Session = StalledSession
    path = os.path.join(KIT, 'fake-kojid.py')
    sys.argv = [path] + args
    os.chdir(KIT)
    code = compile(open(path).read(), path, 'exec')
    exec(code, {'__name__': '__main__', '__file__': path})


WEB_PORT = 18444


def cmd_kojiweb(_):
    """Koji's own web UI (www/kojiweb, wsgi_publisher) under wsgiref, as the kit serves the hub."""
    from wsgiref.simple_server import make_server, WSGIRequestHandler
    src = os.environ.get('KOJI_SRC', '/tmp/koji-src')
    sys.path[:0] = [src, os.path.join(src, 'cli'), os.path.join(src, 'www', 'lib'), os.path.join(src, 'www', 'kojiweb')]
    conf = os.path.join(W, 'web.conf')
    with open(conf, 'w') as f:
        f.write('[web]\nSiteName = koji\nKojiHubURL = http://127.0.0.1:18443/kojihub\n'
                'KojiFilesURL = http://127.0.0.1:18443/kojifiles\nSecret = koji-live-web\n'
                'LibPath = %s\nLiteralFooter = True\n' % os.path.join(src, 'www', 'lib'))
    import wsgi_publisher

    def app(environ, start_response):
        environ['koji.web.ConfigFile'] = conf
        environ['koji.web.ConfigDir'] = '/nonexistent'
        environ['SCRIPT_FILENAME'] = os.path.join(src, 'www', 'kojiweb', 'index.py')
        p = environ.get('PATH_INFO', '')
        if p.startswith('/koji'):
            environ['SCRIPT_NAME'], environ['PATH_INFO'] = '/koji', p[len('/koji'):] or '/'
        return wsgi_publisher.application(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    print('koji web on http://127.0.0.1:%d/koji' % WEB_PORT, flush=True)
    make_server('127.0.0.1', WEB_PORT, app, handler_class=Quiet).serve_forever()


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode('utf-8', 'replace')


def cmd_weblinks(args):
    n = int(args[0]) if args else 1
    b = build(n)
    links = [('tag ' + b['koji_tag'], b.get('koji_tag_url'), b['koji_tag'] + ' | Tag Info')]
    for c, t in sorted(b['tasks']['rpms'].items()):
        links.append(('task %s (%s)' % (t['task_id'], c), t.get('task_url'), 'Task Info'))
    bad = 0
    for what, url, title in links:
        if not url:
            print('%s: no link (is backend.koji.web_url set?)' % what)
            bad += 1
            continue
        status, page = fetch(url)
        m = re.search(r'<title>([^<]*)</title>', page)
        got = m.group(1) if m else ''
        ok = status == 200 and title in got
        bad += not ok
        print('%s %s: %s -> HTTP %d "%s"' % ('ok ' if ok else 'BAD', what, url, status, got))
    page = fetch('%s/builds/%d' % (API, n))[1]
    on_page = sum(1 for _, url, _ in links if url and 'href="%s"' % url in page)
    print('build page /builds/%d links %d of the %d' % (n, on_page, len(links)))
    if bad or on_page != len(links):
        sys.exit(1)


def api(path):
    with urllib.request.urlopen(API + path, timeout=10) as r:
        return json.load(r)


def wait_for(what, pred, timeout, every=1.0):
    end = time.time() + timeout
    while True:
        try:
            v = pred()
        except Exception:
            v = None
        if v:
            return v
        if time.time() > end:
            sys.exit('koji-live: gave up waiting for %s after %ds' % (what, timeout))
        time.sleep(every)


def build(n):
    return api('/module-build-service/2/module-builds/%d?verbose=true' % n)


def wait_state(n, states, timeout, every=1.0):
    return wait_for('build %d %s' % (n, '/'.join(states)), lambda: (lambda b: b if b['state_name'] in states else None)(build(n)),
                    timeout, every)


def start_kojid(*args):
    kill_pidfile('fakekojid')
    with open(os.path.join(W, 'fakekojid.log'), 'a') as logf:
        p = subprocess.Popen(['/usr/bin/python3', os.path.join(KIT, 'fake-kojid.py'), *args], cwd=KIT, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True)
    open(os.path.join(W, 'fakekojid.pid'), 'w').write(str(p.pid))


def kill_pidfile(name, sig=signal.SIGTERM):
    pf = os.path.join(W, name + '.pid')
    if os.path.exists(pf):
        try:
            os.kill(int(open(pf).read().strip()), sig)
        except ProcessLookupError:
            pass
        os.remove(pf)


def git(repo, *args):
    subprocess.run(['git', '-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', *args], check=True,
                   capture_output=True)


def rida_cli(*args):
    env = {**os.environ, 'RIDA_SERVER': API, 'RIDA_TOKEN': 'apitoken'}
    return subprocess.run([os.path.join(W, 'bin', 'rida'), *args], env=env, capture_output=True, text=True, check=True).stdout


def build_tasks():
    sys.path.insert(0, KIT)
    from kojisess import Session
    s = Session('http://127.0.0.1:18443/kojihub')
    return [(t['id'], t['state']) for t in s.listTasks({'method': 'build'}, {'order': 'id'})]


def log_since(mark):
    with open(os.path.join(W, 'rida.log')) as f:
        f.seek(mark)
        return f.read()


def cmd_sessions(_):
    """Build 2 of samplemod (pb changed) with pb held: rida's sessions expire on the hub while it
    polls pb's task; then rida is SIGKILLed and restarted; then pb is let go."""
    b1 = wait_state(1, ['ready', 'failed'], 180)
    print('build 1:', b1['state_name'], '-', b1['state_reason'])
    repos = os.path.join(W, 'repos')
    spec = os.path.join(repos, 'rpms', 'pb', 'pb.spec')
    s = open(spec).read().replace('Release: 1%', 'Release: 2%')
    open(spec, 'w').write(s)
    git(os.path.join(repos, 'rpms', 'pb'), 'commit', '-qam', 'pb: release 2')
    mod = os.path.join(repos, 'modules', 'samplemod')
    with open(os.path.join(mod, 'samplemod.yaml'), 'a') as f:
        f.write('# rebuild pb\n')
    git(mod, 'commit', '-qam', 'rebuild')
    start_kojid('--hold', 'pb')
    head = subprocess.run(['git', '-C', mod, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    print(rida_cli('submit', '--branch', 'main', 'file://%s?#%s' % (mod, head)).strip())
    pb_task = wait_for('a task of pb in build 2', lambda: build(2)['tasks']['rpms']['pb']['task_id'], 120)
    print('build 2: pb is task', pb_task, '(held FREE by the fake builder)')
    tasks_before = build_tasks()

    mark = os.path.getsize(os.path.join(W, 'rida.log'))
    cmd_expire([])
    wait_for('rida to renew its sessions', lambda: 'the hub refused the session' in log_since(mark), 60)
    time.sleep(6)  # a few polls on the new session
    renewals = [l for l in log_since(mark).splitlines() if 'the hub refused the session' in l or 'msg="koji: logged in"' in l]
    print('after the expiry, rida.log:')
    for l in renewals:
        print('   ', re.sub(r'^time=\S+ ', '', l))
    if build(2)['state_name'] != 'build':
        sys.exit('koji-live: build 2 is %s after the expiry' % build(2)['state_name'])

    mark = os.path.getsize(os.path.join(W, 'rida.log'))
    kill_pidfile('rida', signal.SIGKILL)
    print('rida SIGKILLed with pb\'s task', pb_task, 'open; restarting')
    subprocess.run(['./rida-start.sh'], cwd=W, env={**os.environ, 'RIDA': os.path.join(W, 'bin', 'rida')}, check=True,
                   capture_output=True)
    wait_for('the re-attach', lambda: 're-attached to task' in log_since(mark), 120)
    for l in log_since(mark).splitlines():
        if any(k in l for k in ('msg="koji: logged in"', 'build session opened', 're-attached to task')):
            print('   ', re.sub(r'^time=\S+ ', '', l))
    start_kojid()
    b2 = wait_state(2, ['ready', 'failed'], 180)
    print('build 2:', b2['state_name'], '-', b2['state_reason'])
    tasks_after = build_tasks()
    print('hub build tasks before the expiry:', [t for t, _ in tasks_before], 'at the end:', [t for t, _ in tasks_after])
    for c in ('pa', 'pb', 'pc'):
        t = b2['tasks']['rpms'][c]
        print('  %s: task %s, %s' % (c, t['task_id'], t['nvr']))


def cmd_cancel(_):
    """One more build of samplemod (pb changed, pb held), canceled through rida's API while pb's task
    is open: the task must end CANCELED, by rida's login session (not the build's)."""
    repos = os.path.join(W, 'repos')
    spec = os.path.join(repos, 'rpms', 'pb', 'pb.spec')
    rel = int(re.search(r'^Release: (\d+)%', open(spec).read(), re.M).group(1))
    open(spec, 'w').write(re.sub(r'^Release: \d+%', 'Release: %d%%' % (rel + 1), open(spec).read(), flags=re.M))
    git(os.path.join(repos, 'rpms', 'pb'), 'commit', '-qam', 'pb: release %d' % (rel + 1))
    mod = os.path.join(repos, 'modules', 'samplemod')
    with open(os.path.join(mod, 'samplemod.yaml'), 'a') as f:
        f.write('# rebuild pb, to cancel\n')
    git(mod, 'commit', '-qam', 'rebuild to cancel')
    start_kojid('--hold', 'pb')
    head = subprocess.run(['git', '-C', mod, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    out = rida_cli('submit', '--branch', 'main', 'file://%s?#%s' % (mod, head)).strip()
    print(out)
    n = int(re.search(r'module build (\d+)', out).group(1))
    task = wait_for('a task of pb in build %d' % n, lambda: build(n)['tasks']['rpms']['pb']['task_id'], 120)
    print('build %d: pb is task %d (held FREE); canceling' % (n, task))
    print(rida_cli('cancel', str(n)).strip())
    b = wait_state(n, ['failed'], 60)
    print('build %d: %s - %s' % (n, b['state_name'], b['state_reason']))
    sys.path.insert(0, KIT)
    from kojisess import Session
    st = ['FREE', 'OPEN', 'CLOSED', 'CANCELED', 'ASSIGNED', 'FAILED']
    state = wait_for('task %d to end' % task, lambda: (lambda s: s if s != 'FREE' else None)(
        st[Session('http://127.0.0.1:18443/kojihub').getTaskInfo(task)['state']]), 30)
    print('hub task %d: %s' % (task, state))
    sessions = rida_sessions()
    for r in log_records():
        for c in r.get('calls') or []:
            if c['m'] == 'cancelTask' and is_rida(r, sessions):
                print('cancelTask %s on session %s (%s)' % (c['p'], r['sid'], sessions.get(r['sid'])))
        if r['method'] == 'cancelTask' and is_rida(r, sessions):
            print('cancelTask %s on session %s (%s)' % (r['params'], r['sid'], sessions.get(r['sid'])))
    start_kojid()


def cmd_stalled_repo(_):
    """Build 1 with a builder that works build and tagBuild tasks but no repo: the first repo wait
    (after module-build-macros) must end within repo_timeout with an infrastructure error."""
    # Replace the kit's own builder (started by run-all.sh) as soon as it has registered the
    # builder host (its password is set by then), long before the first repo request.
    wait_for('the fake builder host', lambda: psql("SELECT 1 FROM users WHERE name = 'fakebuilder' AND password IS NOT NULL").strip(),
             60, every=0.2)
    kill_pidfile('fakekojid')
    with open(os.path.join(W, 'fakekojid.log'), 'a') as logf:
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'stalled-kojid'], stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True)
    open(os.path.join(W, 'fakekojid.pid'), 'w').write(str(p.pid))
    print('fake builder: repo.checkQueue never runs, newRepo tasks stay FREE')
    b = wait_state(1, ['ready', 'failed', 'done'], 300, every=2)
    print('build 1:', b['state_name'])
    print('reason:', b['state_reason'])
    rq = api('/api/v1/requests/%d' % b['request_id'])['request']
    print('request %d: state %s, result %s' % (rq.get('id', b['request_id']), rq.get('state'), rq.get('result')))
    sessions = rida_sessions()
    first_req = fallback = None
    for r in log_records():
        if not is_rida(r, sessions):
            continue
        if r['method'] == 'repo.request' and first_req is None:
            first_req = r
        if r['method'] == 'newRepo':
            fallback = r
    ended = None  # when rida gave up, from its log (the state trace has whole seconds)
    with open(os.path.join(W, 'rida.log')) as f:
        for line in f:
            if "gave up waiting for the build tag's repo" in line:
                import datetime
                ended = datetime.datetime.fromisoformat(line.split()[0][len('time='):].replace('Z', '+00:00')).timestamp()
    if first_req:
        t0 = first_req['t']
        print('repo.request at %s: %s => %s' % (time.strftime('%H:%M:%S', time.gmtime(t0)), first_req['params'], first_req['result'][:160]))
        if fallback:
            print('newRepo fallback after %.1fs: %s => task %s' % (fallback['t'] - t0, fallback['params'], fallback.get('result')))
        if ended:
            print('rida gave up %.2fs after the repo request reached the hub' % (ended - t0))
    sys.path.insert(0, KIT)
    from kojisess import Session
    s = Session('http://127.0.0.1:18443/kojihub')
    st = ['FREE', 'OPEN', 'CLOSED', 'CANCELED', 'ASSIGNED', 'FAILED']
    for t in s.listTasks({'method': 'newRepo', 'decode': True}, {'order': 'id'}):
        print('hub newRepo task %d: %s %s' % (t['id'], st[t['state']], json.dumps(t['request'])[:120]))


def api_post(path, body):
    req = urllib.request.Request(API + path, data=json.dumps(body).encode(), method='POST',
                                 headers={'Authorization': 'Bearer apitoken', 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers.get('Location'), json.load(r)


def cmd_scratch(_):
    """A scratch build of build 1's commit through the MBS API: it must end done (never ready), its
    context must end _N, its Koji tags and target be MBS's scrmod-N-S-V-C+<id> ones, holding its
    component builds, with no fault from the hub."""
    b1 = wait_state(1, ['ready', 'failed'], 180)
    print('build 1:', b1['state_name'], b1['context'], b1['koji_tag'])
    # The builder may have been replaced (sessions, cancel restart it; stop stops it).
    pf = os.path.join(W, 'fakekojid.pid')
    try:
        os.kill(int(open(pf).read().strip()), 0)
    except (OSError, ValueError):
        start_kojid()
        print('fake builder (re)started')
    status, loc, got = api_post('/module-build-service/1/module-builds/',
                                {'scmurl': b1['scmurl'], 'branch': b1['stream'], 'scratch': True})
    n = got['id']
    print('POST scratch: HTTP %d, Location %s, build %d %s scratch=%s' % (status, loc, n, got['state_name'], got['scratch']))
    t0 = time.time()
    b = wait_state(n, ['done', 'ready', 'failed', 'garbage'], 300)
    took = time.time() - t0
    time.sleep(5)  # a scratch build stays done
    b = build(n)
    bad = []
    print('build %d: %s - %s (%.1fs after the submission; still %s 5s later)' % (n, b['state_name'], b['state_reason'], took, b['state_name']))
    if b['state_name'] != 'done':
        bad.append('state %s, not done' % b['state_name'])
    ctx, tag = b['context'], b['koji_tag']
    print('context %s, koji_tag %s, dist_tag %s' % (ctx, tag, b.get('dist_tag')))
    if not re.fullmatch(re.escape(b1['context']) + r'_\d+', ctx or ''):
        bad.append('context %s is not %s_N' % (ctx, b1['context']))
    want = 'scrmod-%s-%s-%s-%s+%d' % (b['name'], b['stream'], b['version'], ctx, n)
    if tag != want:
        bad.append('koji_tag %s, want %s' % (tag, want))
    for c, t in sorted(b['tasks']['rpms'].items()):
        print('  %s: task %s, %s' % (c, t['task_id'], t['nvr']))
    sys.path.insert(0, KIT)
    from kojisess import Session
    s = Session('http://127.0.0.1:18443/kojihub')
    nvrs = sorted(t['nvr'] for c, t in b['tasks']['rpms'].items() if c != 'module-build-macros')
    tag_ids = []
    for name, want_nvrs in ((tag, nvrs), (tag + '-build', sorted(nvrs + [b['tasks']['rpms']['module-build-macros']['nvr']]))):
        info = s.getTag(name)
        if not info:
            bad.append('no tag %s on the hub' % name)
            continue
        tag_ids.append(info['id'])
        tagged = sorted(x['nvr'] for x in s.listTagged(info['id']))
        print('hub tag %d %s: tagged %s' % (info['id'], name, tagged))
        if tagged != want_nvrs:
            bad.append('%s holds %s, want %s' % (name, tagged, want_nvrs))
    targets = [tg for tg in s.getBuildTargets() if tg['dest_tag_name'] == tag]
    for tg in targets:
        print('hub target %s: build_tag %s, dest_tag %s' % (tg['name'], tg['build_tag_name'], tg['dest_tag_name']))
    if len(targets) != 1 or targets[0]['build_tag_name'] != tag + '-build' or not targets[0]['name'].startswith('scrmod-') \
            or not targets[0]['name'].endswith('+%d' % n):
        bad.append('targets into %s: %s' % (tag, [tg['name'] for tg in targets]))
    st = ['FREE', 'OPEN', 'CLOSED', 'CANCELED', 'ASSIGNED', 'FAILED']
    tasks = [t for t in s.listTasks({'decode': True}, {'order': 'id'})
             if (t['method'] == 'build' and t['request'][1] in [tg['name'] for tg in targets])
             or (t['method'] == 'tagBuild' and t['request'][0] in tag_ids)
             or (t['method'] == 'newRepo' and t['request'][0].get('name') == tag + '-build')]
    by = {}
    for t in tasks:
        by.setdefault(t['method'], []).append('%d %s' % (t['id'], st[t['state']]))
    print('hub tasks of build %d: %d (%s)' % (n, len(tasks), '; '.join('%s %s' % (m, ', '.join(v)) for m, v in sorted(by.items()))))
    sid = None
    with open(os.path.join(W, 'rida.log')) as f:
        for line in f:
            if 'msg="koji: build session opened"' in line and ' nsvc=%s:%s:%s:%s ' % (b['name'], b['stream'], b['version'], ctx) in line:
                sid = re.search(r' session_id=(\d+)', line).group(1)
    reqs, faults = 0, []
    for r in log_records():
        if sid and r.get('sid') == sid:
            reqs += 1
            faults += faults_of(r)
    all_faults = [f for r in log_records() for f in faults_of(r)]
    print('build %d\'s subsession %s: %d requests, %d faults; whole log: %d faults' % (n, sid, reqs, len(faults), len(all_faults)))
    for m, f in all_faults:
        print('  fault:', m, f)
    if all_faults or not sid:
        bad.append('faults %s, build session %s' % (all_faults, sid))
    for x in bad:
        print('BAD', x)
    if bad:
        sys.exit(1)
    print('ok')


CMDS = {'calls': cmd_calls, 'summary': cmd_summary, 'record': cmd_record, 'expire': cmd_expire,
        'kojiweb': cmd_kojiweb, 'weblinks': cmd_weblinks, 'cancel': cmd_cancel,
        'stalled-kojid': cmd_stalled_kojid, 'sessions': cmd_sessions, 'stalled-repo': cmd_stalled_repo,
        'scratch': cmd_scratch}

if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.exit(__doc__)
    CMDS[sys.argv[1]](sys.argv[2:])
