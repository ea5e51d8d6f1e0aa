// Compatibility checks with the real ZooKeeper 3.8 Java client and Curator 5.4.
//
//   java -cp ... Compat HOST:PORT [name-prefix...]
//
// Prints one line per check: "PASS name" or "FAIL name: reason", then "DONE".
// Every check runs with its own deadline and its own root znode, and closes
// every client it opened.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;

public class Compat {
    static String connect;
    static final String BASE = "/compat-java-" + ProcessHandle.current().pid();
    static final int CHECK_SECONDS = Integer.getInteger("compat.checkSeconds", 60);

    interface Check {
        void run(Ctx c) throws Exception;
    }

    /** Per-check context: owns the clients it opens and a unique root path. */
    static final class Ctx implements AutoCloseable {
        final String root;
        final List<AutoCloseable> closeables = new CopyOnWriteArrayList<>();

        Ctx(String name) {
            root = BASE + "/" + name.replace('.', '_');
        }

        ZooKeeper zk() throws Exception {
            return zk(e -> {});
        }

        ZooKeeper zk(Watcher defaultWatcher) throws Exception {
            CountDownLatch connected = new CountDownLatch(1);
            ZooKeeper zk = new ZooKeeper(connect, 10000, e -> {
                if (e.getType() == EventType.None && e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                    connected.countDown();
                }
                defaultWatcher.process(e);
            });
            closeables.add(zk);
            if (!connected.await(15, TimeUnit.SECONDS)) {
                throw new AssertionError("no SyncConnected within 15 s");
            }
            return zk;
        }

        /**
         * A client that logs in with SASL DIGEST-MD5 through a section of the JAAS
         * file java.sh names (compat/jaas-client.conf); connection states go to `states`.
         */
        ZooKeeper zkSasl(String section, BlockingQueue<Watcher.Event.KeeperState> states) throws Exception {
            ZKClientConfig conf = new ZKClientConfig();
            conf.setProperty(ZKClientConfig.ENABLE_CLIENT_SASL_KEY, "true");
            conf.setProperty(ZKClientConfig.LOGIN_CONTEXT_NAME_KEY, section);
            ZooKeeper zk = new ZooKeeper(connect, 10000, e -> {
                if (e.getType() == EventType.None) states.add(e.getState());
            }, conf);
            closeables.add(zk);
            return zk;
        }

        CuratorFramework curator() throws Exception {
            CuratorFramework cf = CuratorFrameworkFactory.builder()
                    .connectString(connect)
                    .sessionTimeoutMs(10000)
                    .connectionTimeoutMs(10000)
                    .retryPolicy(new ExponentialBackoffRetry(100, 3))
                    .build();
            closeables.add(cf);
            cf.start();
            if (!cf.blockUntilConnected(15, TimeUnit.SECONDS)) {
                throw new AssertionError("Curator not connected within 15 s");
            }
            return cf;
        }

        <T extends AutoCloseable> T own(T t) {
            closeables.add(t);
            return t;
        }

        @Override
        public void close() {
            List<AutoCloseable> l = new ArrayList<>(closeables);
            Collections.reverse(l);
            for (AutoCloseable a : l) {
                try {
                    a.close();
                } catch (Exception ignored) {
                }
            }
        }
    }

    // ---- assertion helpers ----------------------------------------------------

    static void check(boolean cond, String msg) {
        if (!cond) throw new AssertionError(msg);
    }

    static void eq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static <E extends KeeperException> E expectKeeper(Class<E> cls, ThrowingRunnable r, String what) throws Exception {
        try {
            r.run();
        } catch (KeeperException e) {
            if (cls.isInstance(e)) return cls.cast(e);
            throw new AssertionError(what + ": expected " + cls.getSimpleName() + ", got " + e);
        }
        throw new AssertionError(what + ": expected " + cls.getSimpleName() + ", got success");
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    static WatchedEvent poll(BlockingQueue<WatchedEvent> q, int ms, String what) throws InterruptedException {
        WatchedEvent e = q.poll(ms, TimeUnit.MILLISECONDS);
        if (e == null) throw new AssertionError("no watch event for " + what + " within " + ms + " ms");
        return e;
    }

    static void waitFor(String what, int ms, java.util.function.BooleanSupplier cond) throws InterruptedException {
        long end = System.nanoTime() + ms * 1_000_000L;
        while (System.nanoTime() < end) {
            if (cond.getAsBoolean()) return;
            Thread.sleep(20);
        }
        if (!cond.getAsBoolean()) throw new AssertionError("timed out after " + ms + " ms waiting for " + what);
    }

    static void mkroot(ZooKeeper zk, String root) throws Exception {
        try {
            zk.create(BASE, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        } catch (KeeperException.NodeExistsException ignored) {
        }
        zk.create(root, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
    }

    static final List<ACL> OPEN = ZooDefs.Ids.OPEN_ACL_UNSAFE;

    // ---- plain ZooKeeper client -----------------------------------------------

    static void zkConnect(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        check(zk.getSessionId() != 0, "session id is 0");
        check(zk.getSessionTimeout() > 0, "negotiated session timeout " + zk.getSessionTimeout());
        check(zk.getState() == ZooKeeper.States.CONNECTED, "state " + zk.getState());
    }

    static void zkCrud(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        String p = c.root + "/node";
        Stat cs = new Stat();
        String created = zk.create(p, b("v0"), OPEN, CreateMode.PERSISTENT, cs);
        eq(p, created, "create returned path");
        eq(0, cs.getVersion(), "create stat version");
        eq(cs.getCzxid(), cs.getMzxid(), "create stat czxid == mzxid");
        eq(2, cs.getDataLength(), "create stat dataLength");
        eq(0L, cs.getEphemeralOwner(), "create stat ephemeralOwner");
        check(cs.getCtime() > 0 && Math.abs(cs.getCtime() - System.currentTimeMillis()) < 60_000,
                "create stat ctime " + cs.getCtime() + " not near now");

        Stat gs = new Stat();
        eq("v0", s(zk.getData(p, false, gs)), "getData");
        eq(cs, gs, "getData stat equals create stat");
        eq(cs, zk.exists(p, false), "exists stat equals create stat");

        Stat ss = zk.setData(p, b("value-1"), 0);
        eq(1, ss.getVersion(), "setData stat version");
        check(ss.getMzxid() > cs.getMzxid(), "setData mzxid " + ss.getMzxid() + " not > " + cs.getMzxid());
        eq(cs.getCzxid(), ss.getCzxid(), "setData keeps czxid");
        eq(7, ss.getDataLength(), "setData dataLength");
        check(ss.getMtime() >= cs.getMtime(), "mtime went backwards");
        eq("value-1", s(zk.getData(p, false, null)), "getData after setData");

        ss = zk.setData(p, b("value-2"), -1);
        eq(2, ss.getVersion(), "setData -1 version");
        expectKeeper(KeeperException.BadVersionException.class, () -> zk.setData(p, b("x"), 1), "setData wrong version");
        expectKeeper(KeeperException.NodeExistsException.class, () -> zk.create(p, null, OPEN, CreateMode.PERSISTENT), "create existing");
        expectKeeper(KeeperException.NoNodeException.class, () -> zk.create(c.root + "/no/child", null, OPEN, CreateMode.PERSISTENT), "create without parent");

        zk.create(p + "/kid", b("k"), OPEN, CreateMode.PERSISTENT);
        expectKeeper(KeeperException.NotEmptyException.class, () -> zk.delete(p, -1), "delete non-empty");
        Stat ps = new Stat();
        List<String> kids = zk.getChildren(p, false, ps);
        eq(List.of("kid"), kids, "getChildren");
        eq(1, ps.getNumChildren(), "getChildren stat numChildren");
        eq(1, ps.getCversion(), "getChildren stat cversion");
        zk.delete(p + "/kid", 0);
        expectKeeper(KeeperException.BadVersionException.class, () -> zk.delete(p, 0), "delete wrong version");
        zk.delete(p, 2);
        eq(null, zk.exists(p, false), "exists after delete");
        expectKeeper(KeeperException.NoNodeException.class, () -> zk.getData(p, false, null), "getData after delete");
        expectKeeper(KeeperException.NoNodeException.class, () -> zk.delete(p, -1), "delete missing");
        expectKeeper(KeeperException.NoNodeException.class, () -> zk.setData(p, b("x"), -1), "setData missing");
    }

    static void zkNullAndEmptyData(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        zk.create(c.root + "/null", null, OPEN, CreateMode.PERSISTENT);
        zk.create(c.root + "/empty", new byte[0], OPEN, CreateMode.PERSISTENT);
        byte[] big = new byte[500_000];
        Arrays.fill(big, (byte) 'z');
        zk.create(c.root + "/big", big, OPEN, CreateMode.PERSISTENT);
        eq(null, zk.getData(c.root + "/null", false, null), "data of node created with null");
        byte[] e = zk.getData(c.root + "/empty", false, null);
        check(e != null && e.length == 0, "data of node created with empty array: " + (e == null ? "null" : e.length + " bytes"));
        Stat st = new Stat();
        byte[] got = zk.getData(c.root + "/big", false, st);
        check(Arrays.equals(big, got), "500 kB data round trip");
        eq(500_000, st.getDataLength(), "500 kB dataLength");
    }

    static void zkEphemeral(Ctx c) throws Exception {
        ZooKeeper a = c.zk();
        ZooKeeper bzk = c.zk();
        mkroot(a, c.root);
        String p = c.root + "/eph";
        a.create(p, b("mine"), OPEN, CreateMode.EPHEMERAL);
        Stat st = bzk.exists(p, false);
        check(st != null, "second session does not see the ephemeral");
        eq(a.getSessionId(), st.getEphemeralOwner(), "ephemeralOwner is the creating session");
        expectKeeper(KeeperException.NoChildrenForEphemeralsException.class,
                () -> a.create(p + "/child", null, OPEN, CreateMode.PERSISTENT), "child of ephemeral");
        List<String> mine = a.getEphemerals(c.root);
        eq(List.of(p), mine, "getEphemerals of owner");
        eq(List.of(), bzk.getEphemerals(c.root), "getEphemerals of other session");
        a.close();
        eq(null, bzk.exists(p, false), "ephemeral after its session closed");
        eq(List.of(), bzk.getChildren(c.root, false), "children after ephemeral owner closed");
    }

    static void zkSequential(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        String prev = null;
        for (int i = 0; i < 5; i++) {
            CreateMode mode = i % 2 == 0 ? CreateMode.PERSISTENT_SEQUENTIAL : CreateMode.EPHEMERAL_SEQUENTIAL;
            String p = zk.create(c.root + "/item-", b("" + i), OPEN, mode);
            eq(c.root + "/item-" + String.format("%010d", i), p, "sequential name " + i);
            check(prev == null || p.compareTo(prev) > 0, "names not increasing");
            prev = p;
        }
        // the counter counts creations under the parent, not current children
        zk.delete(c.root + "/item-0000000004", -1);
        zk.create(c.root + "/plain", null, OPEN, CreateMode.PERSISTENT);
        String p = zk.create(c.root + "/item-", null, OPEN, CreateMode.PERSISTENT_SEQUENTIAL);
        eq(c.root + "/item-0000000006", p, "sequential name after a delete and a plain create");
        // no prefix: the suffix alone is the name
        String q = zk.create(c.root + "/", null, OPEN, CreateMode.PERSISTENT_SEQUENTIAL);
        eq(c.root + "/0000000007", q, "sequential name with empty prefix");
        Stat st = zk.exists(c.root, false);
        eq(9, st.getCversion(), "parent cversion counts creations and deletions");
        eq(7, st.getNumChildren(), "parent numChildren");
    }

    static void zkWatchCreated(Ctx c) throws Exception {
        ZooKeeper a = c.zk();
        ZooKeeper bzk = c.zk();
        mkroot(a, c.root);
        String p = c.root + "/w";
        BlockingQueue<WatchedEvent> q = new LinkedBlockingQueue<>();
        eq(null, a.exists(p, q::add), "exists before create");
        bzk.create(p, b("x"), OPEN, CreateMode.PERSISTENT);
        WatchedEvent e = poll(q, 5000, "NodeCreated");
        eq(EventType.NodeCreated, e.getType(), "event type");
        eq(p, e.getPath(), "event path");
        // exists watch on an existing node fires NodeDeleted
        check(a.exists(p, q::add) != null, "exists after create");
        bzk.delete(p, -1);
        e = poll(q, 5000, "NodeDeleted");
        eq(EventType.NodeDeleted, e.getType(), "event type after delete");
    }

    static void zkWatchDataChanged(Ctx c) throws Exception {
        ZooKeeper a = c.zk();
        ZooKeeper bzk = c.zk();
        mkroot(a, c.root);
        String p = c.root + "/d";
        a.create(p, b("1"), OPEN, CreateMode.PERSISTENT);
        BlockingQueue<WatchedEvent> q = new LinkedBlockingQueue<>();
        a.getData(p, q::add, null);
        bzk.setData(p, b("2"), -1);
        WatchedEvent e = poll(q, 5000, "NodeDataChanged");
        eq(EventType.NodeDataChanged, e.getType(), "event type");
        eq(p, e.getPath(), "event path");
        // one-shot: a second change does not fire the same watch again
        bzk.setData(p, b("3"), -1);
        WatchedEvent again = q.poll(500, TimeUnit.MILLISECONDS);
        eq(null, again, "one-shot watch fired twice");
        // a data watch also fires NodeDeleted
        a.getData(p, q::add, null);
        bzk.delete(p, -1);
        e = poll(q, 5000, "NodeDeleted");
        eq(EventType.NodeDeleted, e.getType(), "event type on delete");
    }

    static void zkWatchChildren(Ctx c) throws Exception {
        ZooKeeper a = c.zk();
        ZooKeeper bzk = c.zk();
        mkroot(a, c.root);
        BlockingQueue<WatchedEvent> q = new LinkedBlockingQueue<>();
        eq(List.of(), a.getChildren(c.root, q::add), "children before");
        bzk.create(c.root + "/kid", null, OPEN, CreateMode.PERSISTENT);
        WatchedEvent e = poll(q, 5000, "NodeChildrenChanged");
        eq(EventType.NodeChildrenChanged, e.getType(), "event type");
        eq(c.root, e.getPath(), "event path is the parent");
        a.getChildren(c.root, q::add);
        bzk.setData(c.root + "/kid", b("data change is not a child change"), -1);
        eq(null, q.poll(300, TimeUnit.MILLISECONDS), "child watch fired on a child's data change");
        bzk.delete(c.root + "/kid", -1);
        e = poll(q, 5000, "NodeChildrenChanged on delete");
        eq(EventType.NodeChildrenChanged, e.getType(), "event type on delete");
    }

    /** ZooKeeper's guarantee: a client sees the watch event before the reply that shows the new state. */
    static void zkWatchBeforeReply(Ctx c) throws Exception {
        ZooKeeper a = c.zk();
        ZooKeeper bzk = c.zk();
        mkroot(a, c.root);
        String p = c.root + "/order";
        a.create(p, b("0"), OPEN, CreateMode.PERSISTENT);
        for (int i = 1; i <= 20; i++) {
            AtomicBoolean fired = new AtomicBoolean();
            a.getData(p, e -> fired.set(true), null);
            bzk.setData(p, b("" + i), -1);
            // the async callback runs on the same event thread, in arrival order
            CountDownLatch done = new CountDownLatch(1);
            AtomicBoolean firedFirst = new AtomicBoolean();
            AtomicInteger seen = new AtomicInteger(-1);
            a.getData(p, false, (rc, path, ctx, data, stat) -> {
                firedFirst.set(fired.get());
                seen.set(data == null ? -1 : Integer.parseInt(s(data)));
                done.countDown();
            }, null);
            check(done.await(5, TimeUnit.SECONDS), "getData callback not called");
            if (seen.get() == i) {
                check(firedFirst.get(), "round " + i + ": reply showing the new value arrived before the watch event");
            }
        }
    }

    static void zkReadYourWrites(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        String p = c.root + "/ryw";
        zk.create(p, b("0"), OPEN, CreateMode.PERSISTENT);
        // pipeline async writes and reads; replies must come back in order and reads see earlier writes
        int n = 200;
        CountDownLatch done = new CountDownLatch(2 * n);
        List<String> errors = new CopyOnWriteArrayList<>();
        AtomicInteger order = new AtomicInteger();
        for (int i = 1; i <= n; i++) {
            final int v = i;
            final int wantOrder = 2 * (i - 1);
            zk.setData(p, b("" + v), -1, (rc, path, ctx, stat) -> {
                if (rc != 0) errors.add("setData rc " + rc);
                if (order.getAndIncrement() != wantOrder) errors.add("reply order");
                done.countDown();
            }, null);
            zk.getData(p, false, (rc, path, ctx, data, stat) -> {
                if (rc != 0) errors.add("getData rc " + rc);
                else if (!("" + v).equals(s(data))) errors.add("read after write " + v + " saw " + s(data));
                if (order.getAndIncrement() != wantOrder + 1) errors.add("reply order");
                done.countDown();
            }, null);
        }
        check(done.await(30, TimeUnit.SECONDS), "pipelined replies missing");
        check(errors.isEmpty(), errors.size() + " errors, first: " + (errors.isEmpty() ? "" : errors.get(0)));
    }

    static void zkMulti(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        String r = c.root;
        zk.create(r + "/x", b("x"), OPEN, CreateMode.PERSISTENT);
        List<OpResult> res = zk.multi(List.of(
                Op.create(r + "/a", b("a"), OPEN, CreateMode.PERSISTENT),
                Op.check(r + "/x", 0),
                Op.setData(r + "/x", b("x1"), 0),
                Op.setData(r + "/a", b("a1"), 0),
                Op.create(r + "/s-", null, OPEN, CreateMode.PERSISTENT_SEQUENTIAL)));
        eq(5, res.size(), "multi result count");
        check(res.get(0) instanceof OpResult.CreateResult, "result 0 type " + res.get(0));
        eq(r + "/a", ((OpResult.CreateResult) res.get(0)).getPath(), "multi create path");
        check(res.get(1) instanceof OpResult.CheckResult, "result 1 type " + res.get(1));
        Stat s2 = ((OpResult.SetDataResult) res.get(2)).getStat();
        Stat s3 = ((OpResult.SetDataResult) res.get(3)).getStat();
        eq(s2.getMzxid(), s3.getMzxid(), "all ops of a multi share one zxid");
        eq(s3.getMzxid(), zk.exists(r + "/a", false).getCzxid(), "created node czxid is the multi's zxid");
        eq(r + "/s-0000000002", ((OpResult.CreateResult) res.get(4)).getPath(), "sequential create in multi");

        try {
            zk.multi(List.of(
                    Op.create(r + "/b", null, OPEN, CreateMode.PERSISTENT),
                    Op.setData(r + "/x", b("nope"), 0),
                    Op.create(r + "/c", null, OPEN, CreateMode.PERSISTENT)));
            throw new AssertionError("multi with a bad version succeeded");
        } catch (KeeperException.BadVersionException e) {
            List<OpResult> rs = e.getResults();
            check(rs != null && rs.size() == 3, "failed multi results " + rs);
            int[] codes = rs.stream().mapToInt(o -> ((OpResult.ErrorResult) o).getErr()).toArray();
            eq("[0, " + KeeperException.Code.BADVERSION.intValue() + ", " + KeeperException.Code.RUNTIMEINCONSISTENCY.intValue() + "]",
                    Arrays.toString(codes), "failed multi per-op error codes");
        }
        eq(null, zk.exists(r + "/b", false), "failed multi left its first create");
        eq("x1", s(zk.getData(r + "/x", false, null)), "failed multi changed data");

        // read-only multi (3.6+)
        List<OpResult> reads = zk.multi(List.of(Op.getData(r + "/a"), Op.getChildren(r)));
        eq("a1", s(((OpResult.GetDataResult) reads.get(0)).getData()), "multi getData");
        List<String> kids = new ArrayList<>(((OpResult.GetChildrenResult) reads.get(1)).getChildren());
        Collections.sort(kids);
        eq(List.of("a", "s-0000000002", "x"), kids, "multi getChildren");
    }

    static void zkAclAndSync(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        Stat st = new Stat();
        List<ACL> acl = zk.getACL(c.root, st);
        eq(ZooDefs.Ids.OPEN_ACL_UNSAFE, acl, "getACL");
        eq(0, st.getAversion(), "aversion");
        String ro = c.root + "/ro";
        zk.create(ro, b("r"), ZooDefs.Ids.READ_ACL_UNSAFE, CreateMode.PERSISTENT);
        eq("r", s(zk.getData(ro, false, null)), "read with READ acl");
        expectKeeper(KeeperException.NoAuthException.class, () -> zk.setData(ro, b("w"), -1), "write with READ-only acl");
        expectKeeper(KeeperException.NoAuthException.class, () -> zk.create(ro + "/kid", null, OPEN, CreateMode.PERSISTENT), "create under READ-only acl");
        expectKeeper(KeeperException.NoAuthException.class, () -> zk.setACL(ro, OPEN, 0), "setACL without ADMIN");
        // a node without READ: getData and getACL answer NoAuth, exists still works
        String wo = c.root + "/wo";
        zk.create(wo, b("w"), new ArrayList<>(List.of(new ACL(ZooDefs.Perms.WRITE, ZooDefs.Ids.ANYONE_ID_UNSAFE))), CreateMode.PERSISTENT);
        expectKeeper(KeeperException.NoAuthException.class, () -> zk.getData(wo, false, null), "getData without READ");
        expectKeeper(KeeperException.NoAuthException.class, () -> zk.getACL(wo, new Stat()), "getACL without READ");
        check(zk.exists(wo, false) != null, "exists without READ");
        zk.setData(wo, b("w2"), -1);
        zk.delete(wo, -1);
        String open = c.root + "/open";
        zk.create(open, null, OPEN, CreateMode.PERSISTENT);
        List<ACL> noWrite = new ArrayList<>(List.of(new ACL(ZooDefs.Perms.ALL & ~ZooDefs.Perms.WRITE, ZooDefs.Ids.ANYONE_ID_UNSAFE)));
        Stat as = zk.setACL(open, noWrite, 0);
        eq(1, as.getAversion(), "aversion after setACL");
        expectKeeper(KeeperException.BadVersionException.class, () -> zk.setACL(open, OPEN, 0), "setACL wrong aversion");
        eq(noWrite, zk.getACL(open, new Stat()), "getACL after setACL");
        // permission is checked before the version
        expectKeeper(KeeperException.NoAuthException.class, () -> zk.setData(open, b("x"), 42), "setData without WRITE and wrong version");
        zk.setACL(open, OPEN, -1);
        CountDownLatch synced = new CountDownLatch(1);
        AtomicInteger rc = new AtomicInteger(-99);
        zk.sync(c.root, (r, path, ctx) -> {
            rc.set(r);
            synced.countDown();
        }, null);
        check(synced.await(5, TimeUnit.SECONDS), "sync callback");
        eq(0, rc.get(), "sync rc");
        eq(List.of("config", "quota"), sorted(zk.getChildren("/zookeeper", false)), "/zookeeper children");
        check(zk.exists("/zookeeper/config", false) != null, "/zookeeper/config exists");
    }

    /** Waits for connection state `want`, failing on AuthFailed (unless wanted) or after 15 s. */
    static void awaitState(BlockingQueue<Watcher.Event.KeeperState> states, Watcher.Event.KeeperState want, String what)
            throws InterruptedException {
        long end = System.nanoTime() + 15_000_000_000L;
        List<Watcher.Event.KeeperState> seen = new ArrayList<>();
        while (System.nanoTime() < end) {
            Watcher.Event.KeeperState st = states.poll(100, TimeUnit.MILLISECONDS);
            if (st == null) continue;
            seen.add(st);
            if (st == want) return;
            if (st == Watcher.Event.KeeperState.AuthFailed) break;
        }
        throw new AssertionError(what + ": expected " + want + ", saw " + seen);
    }

    // SASL DIGEST-MD5 through a JAAS client section (the Kafka-era way), and the
    // sasl ACL scheme: the authenticated user may read, an anonymous client may not.
    // The server's users are in compat/jaas-server.conf.
    static void zkSaslDigest(Ctx c) throws Exception {
        ZooKeeper anon = c.zk();
        mkroot(anon, c.root);
        BlockingQueue<Watcher.Event.KeeperState> states = new LinkedBlockingQueue<>();
        ZooKeeper zk = c.zkSasl("CompatSasl", states);
        awaitState(states, Watcher.Event.KeeperState.SaslAuthenticated, "SASL login as jaasuser");
        List<ClientInfo> who = zk.whoAmI();
        check(who.stream().anyMatch(i -> i.getAuthScheme().equals("sasl") && i.getUser().equals("jaasuser")),
                "whoAmI after SASL login: " + who);
        String node = c.root + "/sasl";
        List<ACL> onlyBob = new ArrayList<>(List.of(new ACL(ZooDefs.Perms.ALL, new Id("sasl", "jaasuser"))));
        zk.create(node, b("secret"), onlyBob, CreateMode.PERSISTENT);
        eq("secret", s(zk.getData(node, false, null)), "read as the sasl user");
        eq(onlyBob, zk.getACL(node, new Stat()), "getACL");
        expectKeeper(KeeperException.NoAuthException.class, () -> anon.getData(node, false, null), "read without SASL");
        expectKeeper(KeeperException.NoAuthException.class, () -> anon.setData(node, b("x"), -1), "write without SASL");
        // `auth` expands to the session's sasl identity
        String viaAuth = c.root + "/auth";
        zk.create(viaAuth, null, ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        eq(onlyBob, zk.getACL(viaAuth, new Stat()), "auth ACL of a SASL session");
        zk.delete(viaAuth, -1);
        zk.delete(node, -1);

        BlockingQueue<Watcher.Event.KeeperState> badStates = new LinkedBlockingQueue<>();
        c.zkSasl("CompatSaslBadPassword", badStates);
        awaitState(badStates, Watcher.Event.KeeperState.AuthFailed, "SASL login with a wrong password");
    }

    static List<String> sorted(List<String> l) {
        List<String> r = new ArrayList<>(l);
        Collections.sort(r);
        return r;
    }

    static void zkContainerAndTtl(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        mkroot(zk, c.root);
        Stat st = new Stat();
        zk.create(c.root + "/con", null, OPEN, CreateMode.CONTAINER, st);
        eq(0L, st.getEphemeralOwner(), "container ephemeralOwner");
        zk.create(c.root + "/ttl", b("t"), OPEN, CreateMode.PERSISTENT_WITH_TTL, st, 600_000);
        eq(0L, st.getEphemeralOwner(), "ttl node ephemeralOwner");
        String seq = zk.create(c.root + "/ttls-", null, OPEN, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, st, 600_000);
        check(seq.matches(".*/ttls-\\d{10}"), "sequential ttl name " + seq);
        Stat ts = zk.exists(c.root + "/ttl", false);
        eq(0L, ts.getEphemeralOwner(), "ttl node ephemeralOwner via exists");
        zk.setData(c.root + "/ttl", b("t2"), -1);
    }

    static void zkPersistentRecursiveWatch(Ctx c) throws Exception {
        ZooKeeper a = c.zk();
        ZooKeeper bzk = c.zk();
        mkroot(a, c.root);
        BlockingQueue<WatchedEvent> q = new LinkedBlockingQueue<>();
        a.addWatch(c.root, q::add, AddWatchMode.PERSISTENT_RECURSIVE);
        bzk.create(c.root + "/x", null, OPEN, CreateMode.PERSISTENT);
        bzk.create(c.root + "/x/y", null, OPEN, CreateMode.PERSISTENT);
        bzk.setData(c.root + "/x/y", b("1"), -1);
        bzk.setData(c.root + "/x/y", b("2"), -1);
        bzk.delete(c.root + "/x/y", -1);
        String[] want = {"NodeCreated " + c.root + "/x", "NodeCreated " + c.root + "/x/y",
                "NodeDataChanged " + c.root + "/x/y", "NodeDataChanged " + c.root + "/x/y", "NodeDeleted " + c.root + "/x/y"};
        for (String w : want) {
            WatchedEvent e = poll(q, 5000, w);
            eq(w, e.getType() + " " + e.getPath(), "persistent recursive event");
        }
        a.removeAllWatches(c.root, Watcher.WatcherType.Any, false);
        bzk.setData(c.root + "/x", b("after remove"), -1);
        WatchedEvent e = q.poll(300, TimeUnit.MILLISECONDS);
        check(e == null || e.getType() == EventType.PersistentWatchRemoved, "event after removeAllWatches: " + e);
    }

    // ---- containers and TTL nodes: removed by the server's periodic check ----------
    // The check interval is a server setting: ZooKeeper reads the JVM property
    // znode.container.checkIntervalMs (default 60 s; compat/zookeeper.sh passes 1000),
    // paddock the zoo.cfg key of the same name (compat/against-paddock.sh sets 1000).

    static final int REAP_WAIT_MS = Integer.getInteger("compat.reapWaitMs", 15000);
    static final String REAP_HINT = " (is the server's container check interval short? ZooKeeper: "
            + "-Dznode.container.checkIntervalMs=1000; paddock: znode.container.checkIntervalMs=1000 in zoo.cfg)";

    static boolean present(ZooKeeper zk, String path) {
        try {
            return zk.exists(path, false) != null;
        } catch (Exception e) {
            throw new RuntimeException("exists " + path + ": " + e, e);
        }
    }

    static void waitGone(ZooKeeper zk, String path, String what) throws InterruptedException {
        waitFor(what + " to vanish" + REAP_HINT, REAP_WAIT_MS, () -> !present(zk, path));
    }

    static void zkTtlExpires(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        CuratorFramework cf = c.curator();
        mkroot(zk, c.root);
        String r = c.root;
        final long ttl = 1500;
        long t0 = System.currentTimeMillis();
        Stat st = new Stat();
        zk.create(r + "/short", b("s"), OPEN, CreateMode.PERSISTENT_WITH_TTL, st, ttl);
        eq(0L, st.getEphemeralOwner(), "TTL node ephemeralOwner");
        String seq = zk.create(r + "/seq-", null, OPEN, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, st, ttl);
        check(seq.matches(".*/seq-\\d{10}"), "sequential TTL name " + seq);
        cf.create().withTtl(ttl).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(r + "/curator", b("c"));
        zk.create(r + "/touched", b("0"), OPEN, CreateMode.PERSISTENT_WITH_TTL, st, ttl);
        zk.create(r + "/parent", null, OPEN, CreateMode.PERSISTENT_WITH_TTL, st, ttl);
        zk.create(r + "/parent/kid", null, OPEN, CreateMode.PERSISTENT);
        zk.create(r + "/long", null, OPEN, CreateMode.PERSISTENT_WITH_TTL, st, 600_000);
        BlockingQueue<WatchedEvent> q = new LinkedBlockingQueue<>();
        check(zk.exists(r + "/short", q::add) != null, "TTL node right after create");
        List<String> expiring = List.of(r + "/short", seq, r + "/curator");

        // not before the TTL: everything is still there at half of it
        long half = t0 + ttl / 2 - System.currentTimeMillis();
        if (half > 0) Thread.sleep(half);
        for (String p : List.of(r + "/short", seq, r + "/curator", r + "/touched", r + "/parent")) {
            check(present(zk, p), p + " vanished before half its TTL");
        }

        // the unmodified ones vanish; the one modified every 300 ms stays
        int touches = 0;
        long deadline = System.currentTimeMillis() + REAP_WAIT_MS;
        while (expiring.stream().anyMatch(p -> present(zk, p))) {
            check(System.currentTimeMillis() < deadline, "TTL nodes " + expiring + " still there after "
                    + REAP_WAIT_MS + " ms, TTL " + ttl + " ms" + REAP_HINT);
            Thread.sleep(300);
            zk.setData(r + "/touched", b("" + ++touches), -1);
        }
        long gone = System.currentTimeMillis() - t0;
        check(gone >= ttl, "TTL nodes gone after " + gone + " ms, before their TTL of " + ttl + " ms");
        WatchedEvent e = poll(q, 5000, "NodeDeleted of the expired TTL node");
        eq(EventType.NodeDeleted + " " + r + "/short", e.getType() + " " + e.getPath(), "event of the expired TTL node");
        long until = System.currentTimeMillis() + ttl + 700;
        while (System.currentTimeMillis() < until) {
            Thread.sleep(300);
            try {
                zk.setData(r + "/touched", b("" + ++touches), -1);
            } catch (KeeperException.NoNodeException ex) {
                throw new AssertionError("a TTL node modified every 300 ms vanished (TTL " + ttl + " ms)");
            }
        }
        // left alone, it goes too
        waitGone(zk, r + "/touched", "the TTL node no longer modified");
        // a TTL node with a child stays, however old; once the child goes, it goes
        check(present(zk, r + "/parent"), "an expired TTL node with a child vanished");
        zk.delete(r + "/parent/kid", -1);
        waitGone(zk, r + "/parent", "the expired TTL node after its last child was deleted");
        check(present(zk, r + "/long"), "a TTL node with a 600 s TTL vanished");
    }

    static void zkContainerReaped(Ctx c) throws Exception {
        ZooKeeper zk = c.zk();
        ZooKeeper other = c.zk();
        CuratorFramework cf = c.curator();
        mkroot(zk, c.root);
        String r = c.root;
        String con = r + "/con";
        Stat st = new Stat();
        zk.create(con, b("c"), OPEN, CreateMode.CONTAINER, st);
        eq(0L, st.getEphemeralOwner(), "container ephemeralOwner");
        zk.create(r + "/fresh", null, OPEN, CreateMode.CONTAINER);
        zk.create(con + "/a", null, OPEN, CreateMode.PERSISTENT);
        zk.create(con + "/b", null, OPEN, CreateMode.EPHEMERAL);
        BlockingQueue<WatchedEvent> nodeq = new LinkedBlockingQueue<>();
        BlockingQueue<WatchedEvent> kidsq = new LinkedBlockingQueue<>();
        check(other.exists(con, nodeq::add) != null, "container seen from another session");
        other.getChildren(r, kidsq::add);
        // Curator makes lock and latch parents containers: two levels of them
        cf.create().creatingParentContainersIfNeeded().forPath(r + "/cc/x/leaf");
        eq(0L, zk.exists(r + "/cc/x", false).getEphemeralOwner(), "Curator parent container ephemeralOwner");

        zk.delete(con + "/a", -1);
        cf.delete().forPath(r + "/cc/x/leaf");
        Thread.sleep(1500);
        check(present(zk, con), "a container that still has a child vanished");
        eq(null, nodeq.poll(), "event on a container that still has a child");
        // the last child goes: the container follows
        zk.delete(con + "/b", -1);
        waitGone(zk, con, "the container after its last child was deleted");
        WatchedEvent e = poll(nodeq, 5000, "NodeDeleted of the container");
        eq(EventType.NodeDeleted + " " + con, e.getType() + " " + e.getPath(), "container exists-watch event");
        e = poll(kidsq, 5000, "NodeChildrenChanged of the container's parent");
        eq(EventType.NodeChildrenChanged + " " + r, e.getType() + " " + e.getPath(), "parent child-watch event");
        // emptied nested containers go one after the other
        waitGone(zk, r + "/cc", "Curator's nested parent containers");
        // a container that never had a child is left alone
        check(present(zk, r + "/fresh"), "a container that never had a child vanished");
        eq(List.of("fresh"), zk.getChildren(r, false), "children left");
    }

    // ---- Curator ----------------------------------------------------------------

    static void curatorMutex(Ctx c) throws Exception {
        CuratorFramework c1 = c.curator();
        CuratorFramework c2 = c.curator();
        String lockPath = c.root + "/lock";
        InterProcessMutex m1 = new InterProcessMutex(c1, lockPath);
        InterProcessMutex m2 = new InterProcessMutex(c2, lockPath);
        check(m1.acquire(5, TimeUnit.SECONDS), "client 1 could not acquire a free lock");
        check(!m2.acquire(300, TimeUnit.MILLISECONDS), "client 2 acquired a lock held by client 1");
        m1.release();
        check(m2.acquire(5, TimeUnit.SECONDS), "client 2 could not acquire after release");
        m2.release();

        AtomicInteger holders = new AtomicInteger();
        AtomicInteger maxHolders = new AtomicInteger();
        AtomicInteger total = new AtomicInteger();
        List<Long> tokens = new CopyOnWriteArrayList<>();
        List<String> errors = new CopyOnWriteArrayList<>();
        ExecutorService ex = Executors.newFixedThreadPool(2);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (InterProcessMutex m : List.of(m1, m2)) {
                CuratorFramework cf = m == m1 ? c1 : c2;
                fs.add(ex.submit(() -> {
                    for (int i = 0; i < 8; i++) {
                        try {
                            if (!m.acquire(20, TimeUnit.SECONDS)) {
                                errors.add("acquire timed out");
                                return null;
                            }
                            try {
                                int h = holders.incrementAndGet();
                                maxHolders.accumulateAndGet(h, Math::max);
                                // the holder's lock node is the first participant; its czxid is the fencing token
                                List<String> parts = new ArrayList<>(m.getParticipantNodes());
                                if (!parts.isEmpty()) {
                                    Stat st = cf.checkExists().forPath(parts.iterator().next());
                                    if (st != null) tokens.add(st.getCzxid());
                                }
                                Thread.sleep(10);
                                total.incrementAndGet();
                                holders.decrementAndGet();
                            } finally {
                                m.release();
                            }
                        } catch (Exception e) {
                            errors.add(e.toString());
                            return null;
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get(50, TimeUnit.SECONDS);
        } finally {
            ex.shutdownNow();
        }
        check(errors.isEmpty(), "errors: " + errors);
        eq(1, maxHolders.get(), "max simultaneous holders");
        eq(16, total.get(), "acquisitions");
        eq(16, tokens.size(), "fencing tokens read");
        for (int i = 1; i < tokens.size(); i++) {
            check(tokens.get(i) > tokens.get(i - 1), "fencing token (lock node czxid) not increasing: " + tokens);
        }
    }

    static void curatorLeaderLatch(Ctx c) throws Exception {
        String path = c.root + "/leader";
        List<LeaderLatch> latches = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            CuratorFramework cf = c.curator();
            LeaderLatch l = new LeaderLatch(cf, path, "p" + i);
            latches.add(l);
            c.own(() -> { if (l.getState() == LeaderLatch.State.STARTED) l.close(); });
            l.start();
        }
        waitFor("one leader among 3", 15000, () -> latches.stream().filter(LeaderLatch::hasLeadership).count() == 1);
        Thread.sleep(300);
        eq(1L, latches.stream().filter(LeaderLatch::hasLeadership).count(), "leaders among 3 (stable)");
        LeaderLatch leader = latches.stream().filter(LeaderLatch::hasLeadership).findFirst().get();
        for (LeaderLatch l : latches) {
            eq(leader.getId(), l.getLeader().getId(), "leader as seen by " + l.getId());
        }
        leader.close();
        List<LeaderLatch> rest = new ArrayList<>(latches);
        rest.remove(leader);
        waitFor("failover to one of the 2 others", 15000, () -> rest.stream().filter(LeaderLatch::hasLeadership).count() == 1);
        Thread.sleep(300);
        eq(1L, rest.stream().filter(LeaderLatch::hasLeadership).count(), "leaders among 2 after failover");
        eq(3 - 1, rest.get(0).getParticipants().size(), "participants after leader left");
    }

    static void curatorLeaderSessionLoss(Ctx c) throws Exception {
        // the leader's client closes (process gone): its ephemeral vanishes and another takes over
        String path = c.root + "/leader";
        CuratorFramework[] cfs = new CuratorFramework[2];
        LeaderLatch[] ls = new LeaderLatch[2];
        for (int i = 0; i < 2; i++) {
            cfs[i] = c.curator();
            ls[i] = new LeaderLatch(cfs[i], path, "q" + i);
            final LeaderLatch l = ls[i];
            c.own(() -> { if (l.getState() == LeaderLatch.State.STARTED) l.close(); });
            ls[i].start();
        }
        waitFor("one leader among 2", 15000, () -> (ls[0].hasLeadership() ? 1 : 0) + (ls[1].hasLeadership() ? 1 : 0) == 1);
        int lead = ls[0].hasLeadership() ? 0 : 1;
        cfs[lead].close();
        waitFor("the other client takes over", 15000, () -> ls[1 - lead].hasLeadership());
    }

    static void curatorLeaderSelector(Ctx c) throws Exception {
        String path = c.root + "/selector";
        int n = 3;
        int terms = 9;
        AtomicInteger leaders = new AtomicInteger();
        AtomicInteger maxLeaders = new AtomicInteger();
        List<String> order = new CopyOnWriteArrayList<>();
        List<String> errors = new CopyOnWriteArrayList<>();
        AtomicBoolean hold = new AtomicBoolean(false);
        AtomicReference<String> holder = new AtomicReference<>();
        CountDownLatch enough = new CountDownLatch(terms);
        List<LeaderSelector> sels = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            CuratorFramework cf = c.curator();
            String id = "sel" + i;
            LeaderSelector[] self = new LeaderSelector[1];
            self[0] = new LeaderSelector(cf, path, new LeaderSelectorListenerAdapter() {
                @Override
                public void takeLeadership(CuratorFramework client) throws Exception {
                    int now = leaders.incrementAndGet();
                    maxLeaders.accumulateAndGet(now, Math::max);
                    try {
                        order.add(id);
                        // everyone agrees, from the server's view: our lock node is the first
                        String seen = self[0].getLeader().getId();
                        if (!id.equals(seen)) errors.add(id + " leads but getLeader() says " + seen);
                        if (!self[0].hasLeadership()) errors.add(id + " in takeLeadership without hasLeadership()");
                        if (hold.get()) {
                            holder.set(id);
                            Thread.sleep(Long.MAX_VALUE); // until interrupted by close()
                        } else {
                            Thread.sleep(80);
                        }
                    } finally {
                        leaders.decrementAndGet();
                        enough.countDown();
                    }
                }
            });
            LeaderSelector sel = self[0];
            sel.setId(id);
            sel.autoRequeue();
            c.own(sel::close);
            sels.add(sel);
        }
        for (LeaderSelector sel : sels) sel.start();
        // relinquishing (returning from takeLeadership) passes leadership on
        check(enough.await(30, TimeUnit.SECONDS), "only " + order.size() + " leadership terms in 30 s: " + order);
        hold.set(true);
        // copy first: a subList of a CopyOnWriteArrayList throws when another selector
        // appends to the list between subList() and the copy
        List<String> first = new ArrayList<>(order).subList(0, terms);
        for (int i = 1; i < first.size(); i++) {
            check(!first.get(i).equals(first.get(i - 1)), "leadership did not pass on relinquish: " + first);
        }
        for (int i = 0; i < n; i++) {
            String id = "sel" + i;
            check(first.stream().filter(id::equals).count() >= 2, id + " led fewer than 2 of " + terms + " terms: " + first);
        }
        // a leader that keeps it until its selector closes: the close passes it on
        waitFor("a leader holding on", 10000, () -> holder.get() != null);
        String h = holder.get();
        LeaderSelector hs = sels.stream().filter(x -> x.getId().equals(h)).findFirst().get();
        for (LeaderSelector sel : sels) {
            eq(h, sel.getLeader().getId(), "leader as seen by " + sel.getId());
        }
        int before = order.size();
        hs.close();
        waitFor("leadership to pass after the leader's close()", 15000, () -> order.size() > before);
        String next = order.get(before);
        check(!next.equals(h), "the closed selector " + h + " led again");
        check(!hs.hasLeadership(), "closed selector still has leadership");
        waitFor("the new leader seen by the others", 10000, () -> {
            try {
                return sels.stream().filter(x -> x != hs).allMatch(x -> {
                    try {
                        return next.equals(x.getLeader().getId());
                    } catch (Exception ex) {
                        return false;
                    }
                });
            } catch (Exception ex) {
                return false;
            }
        });
        check(errors.isEmpty(), "errors: " + errors);
        eq(1, maxLeaders.get(), "max simultaneous leaders");
    }

    static void curatorSemaphore(Ctx c) throws Exception {
        String path = c.root + "/sem";
        final int max = 2;
        CuratorFramework c1 = c.curator();
        CuratorFramework c2 = c.curator();
        CuratorFramework c3 = c.curator();
        InterProcessSemaphoreV2 s1 = new InterProcessSemaphoreV2(c1, path, max);
        InterProcessSemaphoreV2 s2 = new InterProcessSemaphoreV2(c2, path, max);
        InterProcessSemaphoreV2 s3 = new InterProcessSemaphoreV2(c3, path, max);
        Collection<Lease> both = s1.acquire(max, 5, TimeUnit.SECONDS);
        check(both != null && both.size() == max, "client 1 could not take all " + max + " leases");
        eq(null, s2.acquire(300, TimeUnit.MILLISECONDS), "a lease beyond the " + max + " out");
        waitFor("the timed-out waiter's node to go", 5000, () -> {
            try {
                return s3.getParticipantNodes().size() == max;
            } catch (Exception e) {
                return false;
            }
        });
        s1.returnLease(both.iterator().next());
        Lease l2 = s2.acquire(5, TimeUnit.SECONDS);
        check(l2 != null, "client 2 got no lease after one was returned");
        eq(null, s3.acquire(300, TimeUnit.MILLISECONDS), "a third lease with client 1 and 2 holding one each");
        // the leases of a client that goes away are freed (they are ephemeral)
        c1.close();
        Lease l3 = s3.acquire(10, TimeUnit.SECONDS);
        check(l3 != null, "client 3 got no lease after client 1 (holding one) closed");
        s2.returnLease(l2);
        s3.returnLease(l3);

        // contention: 4 clients, 6 acquisitions each, never more than max holders
        AtomicInteger holders = new AtomicInteger();
        AtomicInteger maxHolders = new AtomicInteger();
        AtomicInteger total = new AtomicInteger();
        List<String> errors = new CopyOnWriteArrayList<>();
        List<InterProcessSemaphoreV2> sems = new ArrayList<>();
        for (int i = 0; i < 4; i++) sems.add(new InterProcessSemaphoreV2(c.curator(), path, max));
        ExecutorService ex = Executors.newFixedThreadPool(sems.size());
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (InterProcessSemaphoreV2 sem : sems) {
                fs.add(ex.submit(() -> {
                    for (int i = 0; i < 6; i++) {
                        try {
                            Lease l = sem.acquire(20, TimeUnit.SECONDS);
                            if (l == null) {
                                errors.add("acquire timed out");
                                return null;
                            }
                            try {
                                maxHolders.accumulateAndGet(holders.incrementAndGet(), Math::max);
                                Thread.sleep(25);
                                total.incrementAndGet();
                                holders.decrementAndGet();
                            } finally {
                                sem.returnLease(l);
                            }
                        } catch (Exception e) {
                            errors.add(e.toString());
                            return null;
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get(50, TimeUnit.SECONDS);
        } finally {
            ex.shutdownNow();
        }
        check(errors.isEmpty(), "errors: " + errors);
        eq(24, total.get(), "acquisitions");
        check(maxHolders.get() <= max, "more than " + max + " simultaneous lease holders: " + maxHolders.get());
        check(maxHolders.get() >= 1, "no holder seen");
        eq(0, s2.getParticipantNodes().size(), "lease nodes left after all were returned");
    }

    static void curatorTransaction(Ctx c) throws Exception {
        CuratorFramework cf = c.curator();
        cf.create().creatingParentsIfNeeded().forPath(c.root + "/existing", b("e"));
        CuratorOp op1 = cf.transactionOp().create().forPath(c.root + "/t1", b("one"));
        CuratorOp op2 = cf.transactionOp().create().forPath(c.root + "/t2", b("two"));
        CuratorOp op3 = cf.transactionOp().setData().forPath(c.root + "/existing", b("changed"));
        CuratorOp op4 = cf.transactionOp().check().withVersion(1).forPath(c.root + "/existing");
        List<CuratorTransactionResult> res = cf.transaction().forOperations(op1, op2, op3, op4);
        eq(4, res.size(), "transaction results");
        eq(c.root + "/t1", res.get(0).getResultPath(), "result path");
        eq("one", s(cf.getData().forPath(c.root + "/t1")), "t1 data");
        eq("changed", s(cf.getData().forPath(c.root + "/existing")), "existing data");

        CuratorOp bad1 = cf.transactionOp().create().forPath(c.root + "/t3", b("three"));
        CuratorOp bad2 = cf.transactionOp().create().forPath(c.root + "/t1", b("dup"));
        CuratorOp bad3 = cf.transactionOp().delete().forPath(c.root + "/t2");
        try {
            cf.transaction().forOperations(bad1, bad2, bad3);
            throw new AssertionError("transaction with a duplicate create succeeded");
        } catch (KeeperException.NodeExistsException expected) {
            // all-or-nothing
        }
        eq(null, cf.checkExists().forPath(c.root + "/t3"), "t3 after failed transaction");
        check(cf.checkExists().forPath(c.root + "/t2") != null, "t2 deleted by failed transaction");
        eq("one", s(cf.getData().forPath(c.root + "/t1")), "t1 data after failed transaction");
    }

    static void curatorAtomicLong(Ctx c) throws Exception {
        CuratorFramework c1 = c.curator();
        CuratorFramework c2 = c.curator();
        String path = c.root + "/counter";
        DistributedAtomicLong a1 = new DistributedAtomicLong(c1, path, new RetryNTimes(100, 10));
        DistributedAtomicLong a2 = new DistributedAtomicLong(c2, path, new RetryNTimes(100, 10));
        AtomicValue<Long> v = a1.increment();
        check(v.succeeded(), "first increment did not succeed");
        eq(0L, v.preValue(), "preValue");
        eq(1L, v.postValue(), "postValue");
        List<String> errors = new CopyOnWriteArrayList<>();
        ExecutorService ex = Executors.newFixedThreadPool(2);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (DistributedAtomicLong a : List.of(a1, a2)) {
                fs.add(ex.submit(() -> {
                    for (int i = 0; i < 25; i++) {
                        try {
                            if (!a.increment().succeeded()) errors.add("increment did not succeed");
                        } catch (Exception e) {
                            errors.add(e.toString());
                        }
                    }
                }));
            }
            for (Future<?> f : fs) f.get(50, TimeUnit.SECONDS);
        } finally {
            ex.shutdownNow();
        }
        check(errors.isEmpty(), "errors: " + errors);
        eq(51L, a2.get().postValue(), "counter after 1 + 2 x 25 increments");
        AtomicValue<Long> cas = a2.compareAndSet(51L, 100L);
        check(cas.succeeded(), "compareAndSet with the right value");
        check(!a1.compareAndSet(51L, 7L).succeeded(), "compareAndSet with a stale value succeeded");
        eq(100L, a1.get().postValue(), "counter after compareAndSet");
    }

    static void curatorReadWriteLock(Ctx c) throws Exception {
        String path = c.root + "/rw";
        InterProcessReadWriteLock l1 = new InterProcessReadWriteLock(c.curator(), path);
        InterProcessReadWriteLock l2 = new InterProcessReadWriteLock(c.curator(), path);
        InterProcessReadWriteLock l3 = new InterProcessReadWriteLock(c.curator(), path);
        check(l1.readLock().acquire(5, TimeUnit.SECONDS), "reader 1 got no read lock");
        check(l2.readLock().acquire(5, TimeUnit.SECONDS), "reader 2 got no read lock beside reader 1");
        check(!l3.writeLock().acquire(300, TimeUnit.MILLISECONDS), "a writer got the lock while two readers held it");
        l1.readLock().release();
        check(!l3.writeLock().acquire(300, TimeUnit.MILLISECONDS), "a writer got the lock while a reader held it");
        l2.readLock().release();
        check(l3.writeLock().acquire(5, TimeUnit.SECONDS), "the writer got no lock once the readers left");
        check(!l1.readLock().acquire(300, TimeUnit.MILLISECONDS), "a reader got the lock while the writer held it");
        // the writer may also read (Curator's downgrade)
        check(l3.readLock().acquire(5, TimeUnit.SECONDS), "the writer could not take the read lock");
        l3.readLock().release();
        l3.writeLock().release();
        check(l1.readLock().acquire(5, TimeUnit.SECONDS), "a reader got no lock after the writer left");
        l1.readLock().release();
    }

    static void curatorSharedCount(Ctx c) throws Exception {
        String path = c.root + "/count";
        SharedCount a = c.own(new SharedCount(c.curator(), path, 10));
        SharedCount b = c.own(new SharedCount(c.curator(), path, 99));
        BlockingQueue<Integer> seen = new LinkedBlockingQueue<>();
        b.addListener(new SharedCountListener() {
            @Override
            public void countHasChanged(SharedCountReader reader, int newCount) {
                seen.add(newCount);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState state) {
            }
        });
        a.start();
        b.start();
        eq(10, b.getCount(), "the second client's count (the first one's seed)");
        VersionedValue<Integer> v = a.getVersionedValue();
        check(a.trySetCount(v, 11), "trySetCount at the current version failed");
        check(!a.trySetCount(v, 12), "trySetCount at a stale version succeeded");
        Integer heard = seen.poll(10, TimeUnit.SECONDS);
        while (heard != null && heard != 11) heard = seen.poll(10, TimeUnit.SECONDS);
        eq(11, heard, "the count the other client's listener heard");
        b.setCount(42);
        waitFor("client 1 to see 42", 10000, () -> a.getCount() == 42);
    }

    static void curatorDoubleBarrier(Ctx c) throws Exception {
        String path = c.root + "/barrier";
        final int n = 3;
        List<DistributedDoubleBarrier> members = new ArrayList<>();
        for (int i = 0; i < n; i++) members.add(new DistributedDoubleBarrier(c.curator(), path, n));
        ExecutorService ex = Executors.newFixedThreadPool(n);
        try {
            AtomicInteger entered = new AtomicInteger();
            List<Future<Boolean>> enters = new ArrayList<>();
            for (DistributedDoubleBarrier m : members.subList(0, n - 1)) {
                enters.add(ex.submit(() -> {
                    boolean ok = m.enter(30, TimeUnit.SECONDS);
                    if (ok) entered.incrementAndGet();
                    return ok;
                }));
            }
            Thread.sleep(500);
            eq(0, entered.get(), "members past the barrier before all " + n + " arrived");
            check(members.get(n - 1).enter(10, TimeUnit.SECONDS), "the last member did not get past the barrier");
            for (Future<Boolean> f : enters) check(f.get(10, TimeUnit.SECONDS), "a member never got past the barrier");
            List<Future<Boolean>> leaves = new ArrayList<>();
            for (DistributedDoubleBarrier m : members.subList(0, n - 1)) leaves.add(ex.submit(() -> m.leave(30, TimeUnit.SECONDS)));
            check(members.get(n - 1).leave(10, TimeUnit.SECONDS), "the last member could not leave");
            for (Future<Boolean> f : leaves) check(f.get(10, TimeUnit.SECONDS), "a member never left");
        } finally {
            ex.shutdownNow();
        }
    }

    static void curatorQueue(Ctx c) throws Exception {
        String path = c.root + "/queue";
        BlockingQueue<String> got = new LinkedBlockingQueue<>();
        QueueConsumer<String> consumer = new QueueConsumer<>() {
            @Override
            public void consumeMessage(String message) {
                got.add(message);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState state) {
            }
        };
        QueueSerializer<String> serializer = new QueueSerializer<>() {
            @Override
            public byte[] serialize(String item) {
                return b(item);
            }

            @Override
            public String deserialize(byte[] bytes) {
                return s(bytes);
            }
        };
        CuratorFramework consumerClient = c.curator();
        DistributedQueue<String> in = c.own(QueueBuilder.builder(consumerClient, consumer, serializer, path).buildQueue());
        in.start();
        DistributedQueue<String> out = c.own(QueueBuilder.builder(c.curator(), null, serializer, path).buildQueue());
        out.start();
        Set<String> sent = new TreeSet<>();
        for (int i = 0; i < 20; i++) {
            out.put("m" + i);
            sent.add("m" + i);
        }
        Set<String> received = new TreeSet<>();
        while (received.size() < sent.size()) {
            String m = got.poll(10, TimeUnit.SECONDS);
            check(m != null, "only " + received + " consumed");
            check(received.add(m), "consumed twice: " + m);
        }
        eq(sent, received, "messages consumed");
        // each item's node goes once it is taken
        waitFor("the queue's nodes to go", 10000, () -> {
            try {
                return consumerClient.getChildren().forPath(path).isEmpty();
            } catch (Exception e) {
                return false;
            }
        });
    }

    static void curatorPersistentNode(Ctx c) throws Exception {
        String path = c.root + "/member";
        CuratorFramework c1 = c.curator();
        CuratorFramework c2 = c.curator();
        PersistentNode node = c.own(new PersistentNode(c1, CreateMode.EPHEMERAL, false, path, b("me")));
        node.start();
        check(node.waitForInitialCreate(10, TimeUnit.SECONDS), "the node was not created");
        Stat st = c2.checkExists().forPath(path);
        check(st != null, "the node is not visible to another client");
        eq(c1.getZookeeperClient().getZooKeeper().getSessionId(), st.getEphemeralOwner(), "its ephemeral owner");
        // deleted by someone else, the recipe puts it back (it watches the node)
        c2.delete().forPath(path);
        waitFor("the node to be created again", 10000, () -> {
            try {
                return c2.checkExists().forPath(path) != null;
            } catch (Exception e) {
                return false;
            }
        });
        node.setData(b("changed"));
        waitFor("the new data", 10000, () -> {
            try {
                return "changed".equals(s(c2.getData().forPath(path)));
            } catch (Exception e) {
                return false;
            }
        });
        node.close();
        waitFor("the node to go once the recipe closed", 10000, () -> {
            try {
                return c2.checkExists().forPath(path) == null;
            } catch (Exception e) {
                return false;
            }
        });
    }

    static void curatorGroupMember(Ctx c) throws Exception {
        String path = c.root + "/group";
        GroupMember one = c.own(new GroupMember(c.curator(), path, "one", b("1")));
        GroupMember two = c.own(new GroupMember(c.curator(), path, "two", b("2")));
        one.start();
        two.start();
        waitFor("each member to see both", 10000,
                () -> one.getCurrentMembers().keySet().equals(Set.of("one", "two"))
                        && two.getCurrentMembers().keySet().equals(Set.of("one", "two")));
        eq("2", s(one.getCurrentMembers().get("two")), "member two's data seen by member one");
        two.close();
        waitFor("member one to see two leave", 10000, () -> one.getCurrentMembers().keySet().equals(Set.of("one")));
    }

    @SuppressWarnings("unchecked")
    static List<String> clientWatches(ZooKeeper zk, String kind) throws Exception {
        // ZooKeeper's own (protected, test-only) accessors of the client's registered watches
        java.lang.reflect.Method m = ZooKeeper.class.getDeclaredMethod("get" + kind + "Watches");
        m.setAccessible(true);
        return (List<String>) m.invoke(zk);
    }

    static void curatorCache(Ctx c) throws Exception {
        CuratorFramework c1 = c.curator();
        CuratorFramework c2 = c.curator();
        String path = c.root + "/config";
        c2.create().creatingParentsIfNeeded().forPath(path, b("v0"));
        c2.create().forPath(path + "/pre", b("p"));
        c2.create().forPath(path + "/pre/x", b("px"));
        c2.create().forPath(c.root + "/outside", b("o"));
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        CountDownLatch initialized = new CountDownLatch(1);
        CuratorCache cache = c.own(CuratorCache.build(c1, path));
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(n -> events.add("create " + n.getPath() + " " + s(n.getData())))
                .forChanges((o, n) -> events.add("change " + n.getPath() + " " + s(n.getData())))
                .forDeletes(o -> events.add("delete " + o.getPath()))
                .forInitialized(initialized::countDown)
                .build());
        cache.start();
        check(initialized.await(10, TimeUnit.SECONDS), "cache not initialized");
        Set<String> initial = new TreeSet<>();
        for (int i = 0; i < 3; i++) {
            String e = events.poll(5, TimeUnit.SECONDS);
            check(e != null, "initial events: only " + initial);
            initial.add(e);
        }
        eq(new TreeSet<>(List.of("create " + path + " v0", "create " + path + "/pre p", "create " + path + "/pre/x px")),
                initial, "initial events");
        eq(3, cache.size(), "cached nodes after start");

        // the cache relies on one persistent recursive watch (addWatch), not on one-shot watches
        ZooKeeper zk1 = c1.getZookeeperClient().getZooKeeper();
        eq(List.of(path), clientWatches(zk1, "PersistentRecursive"), "persistent recursive watches of the cache's client");
        for (String kind : List.of("Data", "Exist", "Child", "Persistent")) {
            eq(List.of(), clientWatches(zk1, kind).stream().filter(p -> p.startsWith(path)).collect(java.util.stream.Collectors.toList()),
                    kind + " watches of the cache's client");
        }

        for (int i = 1; i <= 5; i++) {
            c2.setData().forPath(path, b("v" + i));
            eq("change " + path + " v" + i, events.poll(5, TimeUnit.SECONDS), "change event " + i + " (in order)");
        }
        c2.create().forPath(path + "/sub", b("s"));
        eq("create " + path + "/sub s", events.poll(5, TimeUnit.SECONDS), "child create event");
        // creates, changes and deletes below the root, at any depth
        c2.create().forPath(path + "/sub/a", b("a"));
        eq("create " + path + "/sub/a a", events.poll(5, TimeUnit.SECONDS), "grandchild create event");
        c2.create().forPath(path + "/sub/a/b", b("b"));
        eq("create " + path + "/sub/a/b b", events.poll(5, TimeUnit.SECONDS), "depth-3 create event");
        c2.setData().forPath(path + "/pre/x", b("px2"));
        eq("change " + path + "/pre/x px2", events.poll(5, TimeUnit.SECONDS), "change event of a node present at start");
        c2.setData().forPath(path + "/sub/a/b", b("b2"));
        eq("change " + path + "/sub/a/b b2", events.poll(5, TimeUnit.SECONDS), "depth-3 change event");
        c2.delete().forPath(path + "/pre/x");
        eq("delete " + path + "/pre/x", events.poll(5, TimeUnit.SECONDS), "grandchild delete event");
        c2.delete().deletingChildrenIfNeeded().forPath(path + "/sub");
        eq("delete " + path + "/sub/a/b", events.poll(5, TimeUnit.SECONDS), "subtree delete event 1");
        eq("delete " + path + "/sub/a", events.poll(5, TimeUnit.SECONDS), "subtree delete event 2");
        eq("delete " + path + "/sub", events.poll(5, TimeUnit.SECONDS), "subtree delete event 3");
        // nothing outside the root
        c2.setData().forPath(c.root + "/outside", b("o2"));
        c2.setData().forPath(path, b("v6"));
        eq("change " + path + " v6", events.poll(5, TimeUnit.SECONDS), "change event after a change outside the root");
        eq(null, events.poll(200, TimeUnit.MILLISECONDS), "unexpected event");
        eq("v6", s(cache.get(path).get().getData()), "cached data");
        eq(2, cache.size(), "cached nodes at the end (root and /pre)");
        check(!cache.get(path + "/sub/a").isPresent(), "deleted node still cached");
    }

    // ---- runner -------------------------------------------------------------------

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Compat HOST:PORT [name-prefix...]");
            System.exit(2);
        }
        connect = args[0];
        List<String> filters = Arrays.asList(args).subList(1, args.length);
        Map<String, Check> checks = new LinkedHashMap<>();
        checks.put("java.zk.connect", Compat::zkConnect);
        checks.put("java.zk.create_get_set_delete", Compat::zkCrud);
        checks.put("java.zk.null_empty_large_data", Compat::zkNullAndEmptyData);
        checks.put("java.zk.ephemeral_vanishes_on_close", Compat::zkEphemeral);
        checks.put("java.zk.sequential_names", Compat::zkSequential);
        checks.put("java.zk.watch_exists_created", Compat::zkWatchCreated);
        checks.put("java.zk.watch_data_changed", Compat::zkWatchDataChanged);
        checks.put("java.zk.watch_children_changed", Compat::zkWatchChildren);
        checks.put("java.zk.watch_event_before_reply", Compat::zkWatchBeforeReply);
        checks.put("java.zk.pipelined_read_your_writes", Compat::zkReadYourWrites);
        checks.put("java.zk.multi", Compat::zkMulti);
        checks.put("java.zk.acl_and_sync", Compat::zkAclAndSync);
        checks.put("java.zk.container_and_ttl", Compat::zkContainerAndTtl);
        checks.put("java.zk.persistent_recursive_watch", Compat::zkPersistentRecursiveWatch);
        checks.put("java.zk.sasl_digest_md5", Compat::zkSaslDigest);
        checks.put("java.zk.ttl_expires", Compat::zkTtlExpires);
        checks.put("java.zk.container_reaped", Compat::zkContainerReaped);
        checks.put("java.curator.mutex", Compat::curatorMutex);
        checks.put("java.curator.leader_latch", Compat::curatorLeaderLatch);
        checks.put("java.curator.leader_client_loss", Compat::curatorLeaderSessionLoss);
        checks.put("java.curator.leader_selector", Compat::curatorLeaderSelector);
        checks.put("java.curator.semaphore", Compat::curatorSemaphore);
        checks.put("java.curator.transaction", Compat::curatorTransaction);
        checks.put("java.curator.atomic_long", Compat::curatorAtomicLong);
        checks.put("java.curator.cache", Compat::curatorCache);
        checks.put("java.curator.read_write_lock", Compat::curatorReadWriteLock);
        checks.put("java.curator.shared_count", Compat::curatorSharedCount);
        checks.put("java.curator.double_barrier", Compat::curatorDoubleBarrier);
        checks.put("java.curator.queue", Compat::curatorQueue);
        checks.put("java.curator.persistent_node", Compat::curatorPersistentNode);
        checks.put("java.curator.group_member", Compat::curatorGroupMember);

        // one probe first: when the server cannot be reached at all, fail everything fast
        String unreachable = null;
        try (Ctx probe = new Ctx("probe")) {
            probe.zk();
        } catch (Throwable t) {
            unreachable = "could not connect to " + connect + ": " + (t.getMessage() == null ? t.toString() : t.getMessage());
        }
        ExecutorService runner = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        for (Map.Entry<String, Check> en : checks.entrySet()) {
            String name = en.getKey();
            if (!filters.isEmpty() && filters.stream().noneMatch(name::startsWith)) continue;
            if (unreachable != null) {
                System.out.println("FAIL " + name + ": " + unreachable);
                continue;
            }
            Ctx ctx = new Ctx(name.substring("java.".length()));
            Future<?> f = runner.submit(() -> {
                try (ctx) {
                    en.getValue().run(ctx);
                }
                return null;
            });
            String result;
            long t0 = System.nanoTime();
            try {
                f.get(CHECK_SECONDS, TimeUnit.SECONDS);
                result = "PASS " + name;
            } catch (TimeoutException e) {
                f.cancel(true);
                ctx.close();
                result = "FAIL " + name + ": timed out after " + CHECK_SECONDS + " s";
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable t = e.getCause();
                System.err.println(name + " failed:");
                t.printStackTrace();
                String msg = t instanceof AssertionError ? t.getMessage() : t.toString();
                StackTraceElement where = Arrays.stream(t.getStackTrace())
                        .filter(st -> st.getClassName().startsWith("Compat")).findFirst().orElse(null);
                result = "FAIL " + name + ": " + String.valueOf(msg).replace('\n', ' ')
                        + (where != null ? " (Compat.java:" + where.getLineNumber() + ")" : "");
            }
            System.out.println(result);
            System.err.printf("%s took %d ms%n", name, (System.nanoTime() - t0) / 1_000_000);
        }
        if (unreachable == null) cleanup();
        System.out.println("DONE");
        System.out.flush();
        System.exit(0);
    }

    static void cleanup() {
        Ctx ctx = new Ctx("cleanup");
        try (ctx) {
            ZooKeeper zk = ctx.zk();
            org.apache.zookeeper.ZKUtil.deleteRecursive(zk, BASE);
        } catch (Throwable e) {
            System.err.println("cleanup of " + BASE + " failed: " + e);
        }
    }
}
