// Drives one ZooKeeper 3.8 Java client session through (nearly) every client
// opcode, so that the recording proxy (record.py) captures golden frames for
// the records zkCli.sh never sends. See README.md for how it is run.
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;
import org.apache.zookeeper.*;
import org.apache.zookeeper.admin.ZooKeeperAdmin;
import org.apache.zookeeper.data.*;

public class Driver {
    static final BlockingQueue<Watcher.Event.KeeperState> states = new LinkedBlockingQueue<>();

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static void await(Watcher.Event.KeeperState want) throws Exception {
        while (true) {
            Watcher.Event.KeeperState s = states.poll(30, TimeUnit.SECONDS);
            if (s == null) throw new RuntimeException("timed out waiting for " + want);
            if (s == want) return;
        }
    }

    static void attempt(String what, Callable<?> c) {
        try {
            System.out.println(what + " -> " + c.call());
        } catch (Exception e) {
            System.out.println(what + " -> " + e);
        }
    }

    public static void main(String[] args) throws Exception {
        String hp = args[0];
        Watcher w = ev -> {
            System.out.println("event " + ev);
            if (ev.getType() == Watcher.Event.EventType.None) states.add(ev.getState());
        };
        ZooKeeper zk = new ZooKeeper(hp, 6000, w);
        await(Watcher.Event.KeeperState.SyncConnected);

        zk.addAuthInfo("digest", b("alice:secret"));
        attempt("create", () -> zk.create("/d", b("hello"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        attempt("create2", () -> zk.create("/d/c2", b("two"), ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT, new Stat()));
        attempt("createContainer", () -> zk.create("/d/ctr", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER));
        attempt("createTTL", () -> zk.create("/d/ttl", b("t"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, new Stat(), 60000));
        attempt("createEphSeq", () -> zk.create("/d/es-", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL));
        attempt("createExists", () -> zk.create("/d", b("dup"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        attempt("createNoParent", () -> zk.create("/nope/x", b("x"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        attempt("exists", () -> zk.exists("/d", true));
        attempt("existsMissing", () -> zk.exists("/nope", true));
        attempt("getData", () -> new String(zk.getData("/d", true, new Stat()), StandardCharsets.UTF_8));
        attempt("getChildren", () -> zk.getChildren("/d", true));
        attempt("getChildren2", () -> zk.getChildren("/d", false, new Stat()));
        attempt("setData", () -> zk.setData("/d", b("world"), -1));
        attempt("setDataBadVersion", () -> zk.setData("/d", b("x"), 42));
        attempt("getACL", () -> zk.getACL("/d/c2", new Stat()));
        attempt("setACL", () -> zk.setACL("/d/ttl", ZooDefs.Ids.READ_ACL_UNSAFE, 0));
        attempt("setDataNoAuth", () -> zk.setData("/d/ttl", b("denied"), -1));
        CountDownLatch synced = new CountDownLatch(1);
        zk.sync("/d", (rc, path, ctx) -> synced.countDown(), null);
        synced.await(10, TimeUnit.SECONDS);
        attempt("multi", () -> zk.multi(Arrays.asList(
                Op.create("/d/m1", b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create("/d/m2", b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                Op.setData("/d", b("multi"), -1),
                Op.check("/d", 2),
                Op.delete("/d/m1", -1))));
        attempt("multiCreate2", () -> zk.multi(Arrays.asList(
                Op.create("/d/m3", b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
                Op.create("/d/m4", b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, 60000),
                Op.delete("/d/m3", -1))));
        attempt("multiFail", () -> zk.multi(Arrays.asList(
                Op.create("/d/m5", b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.check("/d", 999),
                Op.delete("/d/nothing", -1))));
        attempt("multiRead", () -> zk.multi(Arrays.asList(
                Op.getData("/d"),
                Op.getChildren("/d"),
                Op.getData("/d/missing"))));
        attempt("getAllChildrenNumber", () -> zk.getAllChildrenNumber("/d"));
        attempt("getEphemerals", () -> zk.getEphemerals("/d"));
        attempt("whoAmI", () -> zk.whoAmI());
        // Watches are re-sent with SetWatches (no persistent watches yet) when
        // the proxy drops the connection on seeing the marker path.
        attempt("drop1", () -> zk.exists("/golden-drop-connection", false));
        await(Watcher.Event.KeeperState.Disconnected);
        await(Watcher.Event.KeeperState.SyncConnected);
        Watcher pw = ev -> System.out.println("persistent " + ev);
        zk.addWatch("/d", pw, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.addWatch("/d/c2", AddWatchMode.PERSISTENT);
        attempt("drop2", () -> zk.exists("/golden-drop-connection-2", false));
        await(Watcher.Event.KeeperState.Disconnected);
        await(Watcher.Event.KeeperState.SyncConnected);
        attempt("createUnderWatch", () -> zk.create("/d/late", b("l"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL));
        attempt("removeWatches", () -> { zk.removeWatches("/d", pw, Watcher.WatcherType.Any, false); return "ok"; });
        attempt("removeAllWatches", () -> { zk.removeAllWatches("/d/c2", Watcher.WatcherType.Any, false); return "ok"; });
        attempt("removeWatchesNone", () -> { zk.removeAllWatches("/d/ctr", Watcher.WatcherType.Data, false); return "ok"; });
        Thread.sleep(4000); // idle long enough for a ping
        attempt("delete", () -> { zk.delete("/d/late", -1); return "ok"; });
        attempt("deleteNotEmpty", () -> { zk.delete("/d", -1); return "ok"; });
        zk.close();

        ZooKeeperAdmin admin = new ZooKeeperAdmin(hp, 6000, w);
        await(Watcher.Event.KeeperState.SyncConnected);
        attempt("reconfig", () -> admin.reconfigure("server.5=127.0.0.1:1234:1235;1236", null, null, -1, new Stat()));
        admin.close();
    }
}
