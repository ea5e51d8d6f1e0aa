// node-zookeeper-client, a ZooKeeper client written in JavaScript from the
// protocol (not a binding of the C client), against one server:
//   node check.js HOST:PORT
// One line per check, "PASS node.name" or "FAIL node.name: reason"; exit 0 when
// all pass. Every check holds on the real ZooKeeper 3.8 too.
'use strict';
const zk = require('node-zookeeper-client');
const assert = require('assert');
const { CreateMode, Exception, Event, ACL, Id, Permission } = zk;
const ZK_OPEN = ACL.OPEN_ACL_UNSAFE;

const server = process.argv[2];
const root = '/nodecheck-' + process.pid + '-' + Date.now();

function client(chroot) {
    return new Promise((resolve, reject) => {
        const c = zk.createClient(server + (chroot || ''), { sessionTimeout: 10000, retries: 0 });
        const t = setTimeout(() => reject(new Error('connect timed out')), 10000);
        c.once('connected', () => { clearTimeout(t); resolve(c); });
        c.connect();
    });
}

// A client call as a promise: its callback's results, or an Error that says
// which call failed and carries the ZooKeeper error code in `zkCode`.
function call(c, fn, ...args) {
    return new Promise((resolve, reject) => {
        c[fn](...args, (err, ...res) => {
            if (!err) return resolve(res);
            const e = new Error(fn + ' ' + (args.find((x) => typeof x === 'string') || '') + ': ' + err);
            e.zkCode = typeof err.getCode === 'function' ? err.getCode() : undefined;
            reject(e);
        });
    });
}
// The ZooKeeper error code a call ended with, 'OK' if it succeeded.
async function code(p) {
    try { await p; } catch (e) { if (e.zkCode === undefined) throw e; return e.zkCode; }
    return 'OK';
}
// A one-shot watcher; `fired()` is its event, or an error after 5 s.
function watcher() {
    let fire;
    const fired = new Promise((r) => { fire = r; });
    const w = (ev) => fire(ev);
    w.fired = () => Promise.race([fired, new Promise((_, rj) => setTimeout(() => rj(new Error('no event')), 5000))]);
    return w;
}

const checks = [];
function check(name, fn) { checks.push([name, fn]); }

let a, b;

check('session', async () => {
    assert.ok(a.getSessionId().length === 8);
    assert.ok(a.getSessionTimeout() > 0);
    await call(a, 'create', root, Buffer.from('r'), CreateMode.PERSISTENT);
});

check('create', async () => {
    const [p] = await call(a, 'mkdirp', root + '/x/y/z', Buffer.from('leaf'), ZK_OPEN, CreateMode.PERSISTENT);
    assert.strictEqual(p, root + '/x/y/z');
    const [data, stat] = await call(b, 'getData', root + '/x/y/z');
    assert.strictEqual(data.toString(), 'leaf');
    assert.strictEqual(stat.version, 0);
    assert.strictEqual(await code(call(a, 'create', root + '/x', null, CreateMode.PERSISTENT)), Exception.NODE_EXISTS);
    assert.strictEqual(await code(call(a, 'create', root + '/none/child', null, CreateMode.PERSISTENT)), Exception.NO_NODE);
    const [empty] = await call(a, 'create', root + '/empty', null, CreateMode.PERSISTENT);
    const [nodata] = await call(b, 'getData', empty);
    assert.ok(nodata === null || nodata === undefined || nodata.length === 0, 'no data: ' + nodata);
});

check('sequential_ephemeral', async () => {
    await call(a, 'create', root + '/lock', null, CreateMode.PERSISTENT);
    const names = [];
    for (let i = 0; i < 3; i++) {
        const [p] = await call(a, 'create', root + '/lock/n-', null, CreateMode.EPHEMERAL_SEQUENTIAL);
        names.push(p);
    }
    assert.deepStrictEqual(names.map((p) => p.slice(-10)), ['0000000000', '0000000001', '0000000002']);
    const [children] = await call(b, 'getChildren', root + '/lock');
    assert.deepStrictEqual(children.sort(), names.map((p) => p.split('/').pop()));
    const [, stat] = await call(b, 'getData', names[0]);
    assert.strictEqual(stat.ephemeralOwner.toString('hex'), a.getSessionId().toString('hex'));
});

check('data_watch', async () => {
    const w = watcher();
    await call(a, 'create', root + '/w', Buffer.from('1'), CreateMode.PERSISTENT);
    await call(b, 'getData', root + '/w', w);
    const [stat] = await call(a, 'setData', root + '/w', Buffer.from('2'), 0);
    assert.strictEqual(stat.version, 1);
    const ev = await w.fired();
    assert.strictEqual(ev.getType(), Event.NODE_DATA_CHANGED);
    assert.strictEqual(ev.getPath(), root + '/w');
    assert.strictEqual(await code(call(a, 'setData', root + '/w', Buffer.from('3'), 0)), Exception.BAD_VERSION);
});

check('child_watch', async () => {
    const w = watcher();
    await call(a, 'create', root + '/c', null, CreateMode.PERSISTENT);
    await call(b, 'getChildren', root + '/c', w);
    await call(a, 'create', root + '/c/k', null, CreateMode.PERSISTENT);
    const ev = await w.fired();
    assert.strictEqual(ev.getType(), Event.NODE_CHILDREN_CHANGED);
    assert.strictEqual(ev.getPath(), root + '/c');
});

check('exists_watch', async () => {
    const w1 = watcher();
    const [st] = await call(b, 'exists', root + '/e', w1);
    assert.ok(!st);
    await call(a, 'create', root + '/e', null, CreateMode.PERSISTENT);
    assert.strictEqual((await w1.fired()).getType(), Event.NODE_CREATED);
    const w2 = watcher();
    const [st2] = await call(b, 'exists', root + '/e', w2);
    assert.ok(st2);
    assert.strictEqual(await code(call(a, 'remove', root + '/e', 5)), Exception.BAD_VERSION);
    await call(a, 'remove', root + '/e', -1);
    assert.strictEqual((await w2.fired()).getType(), Event.NODE_DELETED);
    assert.strictEqual(await code(call(a, 'remove', root + '/x', -1)), Exception.NOT_EMPTY);
});

check('multi', async () => {
    await call(a, 'create', root + '/t', Buffer.from('t'), CreateMode.PERSISTENT);
    const [results] = await call(a.transaction()
        .check(root + '/t', 0)
        .create(root + '/t/one', Buffer.from('1'))
        .setData(root + '/t', Buffer.from('tt'), 0)
        .create(root + '/t/two')
        .remove(root + '/t/two', 0), 'commit');
    assert.strictEqual(results.length, 5);
    assert.strictEqual(results[1].path, root + '/t/one');
    assert.strictEqual(results[2].stat.version, 1);
    // A failing transaction applies nothing.
    let failed;
    try {
        // (the library sends version 0 as -1: any version)
        await call(a.transaction().create(root + '/t/three').check(root + '/t', 5), 'commit');
    } catch (e) { failed = e; }
    assert.strictEqual(failed && failed.zkCode, Exception.BAD_VERSION, 'the failing transaction failed: ' + failed);
    assert.strictEqual(await code(call(b, 'getData', root + '/t/three')), Exception.NO_NODE);
    const [data] = await call(b, 'getData', root + '/t');
    assert.strictEqual(data.toString(), 'tt');
});

check('acl', async () => {
    const digest = require('crypto').createHash('sha1').update('user:secret').digest('base64');
    const acls = [new ACL(Permission.ALL, new Id('digest', 'user:' + digest))];
    a.addAuthInfo('digest', Buffer.from('user:secret'));
    await call(a, 'create', root + '/secret', Buffer.from('s'), acls, CreateMode.PERSISTENT);
    const [got] = await call(a, 'getData', root + '/secret');
    assert.strictEqual(got.toString(), 's');
    assert.strictEqual(await code(call(b, 'getData', root + '/secret')), Exception.NO_AUTH);
    assert.strictEqual(await code(call(b, 'getACL', root + '/secret')), Exception.NO_AUTH);
    const [read] = await call(a, 'getACL', root + '/secret');
    assert.strictEqual(read.length, 1);
    assert.strictEqual(read[0].id.scheme, 'digest');
    assert.strictEqual(read[0].permission, Permission.ALL);
    await call(a, 'setACL', root + '/secret', ZK_OPEN, -1);
    const [open] = await call(b, 'getData', root + '/secret');
    assert.strictEqual(open.toString(), 's');
});

check('large_value', async () => {
    const big = Buffer.alloc(1000 * 1000, 7);
    await call(a, 'create', root + '/big', big, CreateMode.PERSISTENT);
    const [got, stat] = await call(b, 'getData', root + '/big');
    assert.ok(got.equals(big));
    assert.strictEqual(stat.dataLength, big.length);
});

check('chroot', async () => {
    const c = await client(root + '/x');
    try {
        const w = watcher();
        const [kids] = await call(c, 'getChildren', '/', w);
        assert.deepStrictEqual(kids, ['y']);
        const [p] = await call(c, 'create', '/seq-', null, CreateMode.PERSISTENT_SEQUENTIAL);
        assert.strictEqual(p, '/seq-0000000001');
        const ev = await w.fired();
        assert.strictEqual(ev.getPath(), '/');
        const [, stat] = await call(a, 'getData', root + '/x/seq-0000000001');
        assert.ok(stat);
    } finally { c.close(); }
});

check('ephemeral_ends_with_session', async () => {
    const c = await client();
    await call(c, 'create', root + '/gone', null, CreateMode.EPHEMERAL);
    const w = watcher();
    await call(b, 'exists', root + '/gone', w);
    c.close();
    assert.strictEqual((await w.fired()).getType(), Event.NODE_DELETED);
    assert.strictEqual(await code(call(a, 'create', root + '/lock/x', null, CreateMode.EPHEMERAL)), 'OK');
    assert.strictEqual(await code(call(a, 'create', root + '/lock/x/y', null, CreateMode.PERSISTENT)), Exception.NO_CHILDREN_FOR_EPHEMERALS);
});

check('oversized_request_keeps_session', async () => {
    const f = await client();
    try {
        await call(f, 'create', root + '/kept', null, CreateMode.EPHEMERAL);
        const w = watcher();
        await call(f, 'getData', root + '/kept', w);
        // Past jute.maxbuffer (1 MiB): two values of almost 1 MB in one multi.
        const big = Buffer.alloc(1000 * 1000, 1);
        const lost = await code(call(f.transaction().setData(root + '/kept', big).setData(root + '/kept', big), 'commit'));
        assert.strictEqual(lost, Exception.CONNECTION_LOSS);
        await new Promise((r) => f.once('connected', r));
        await call(b, 'setData', root + '/kept', Buffer.from('after'), -1);
        const ev = await w.fired();
        assert.strictEqual(ev.getType(), Event.NODE_DATA_CHANGED);
        const [data, stat] = await call(f, 'getData', root + '/kept');
        assert.strictEqual(data.toString(), 'after');
        assert.strictEqual(stat.ephemeralOwner.toString('hex'), f.getSessionId().toString('hex'));
    } finally { f.close(); }
});

check('delete_tree', async () => {
    // (ephemerals of the sessions closed above may still be going)
    async function rm(p) {
        let kids = [];
        try { [kids] = await call(a, 'getChildren', p); } catch (e) { if (e.zkCode !== Exception.NO_NODE) throw e; }
        for (const k of kids) await rm(p + '/' + k);
        const gone = await code(call(a, 'remove', p, -1));
        assert.ok(gone === 'OK' || gone === Exception.NO_NODE, p + ': ' + gone);
    }
    await rm(root);
    const [st] = await call(b, 'exists', root);
    assert.ok(!st);
});

(async () => {
    let failed = 0;
    a = await client();
    b = await client();
    for (const [name, fn] of checks) {
        try {
            await fn();
            console.log('PASS node.' + name);
        } catch (e) {
            failed++;
            console.log('FAIL node.' + name + ': ' + String(e && e.message || e).replace(/\n/g, ' | '));
        }
    }
    a.close();
    b.close();
    process.exit(failed ? 1 : 0);
})().catch((e) => { console.log('FAIL node.connect: ' + e); process.exit(1); });
