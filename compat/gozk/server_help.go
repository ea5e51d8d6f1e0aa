// paddock's replacement for go-zookeeper's test-cluster helper
// (zk/server_help.go), laid over the Debian package's copy with
// `go test -overlay`. It keeps the helper's API, which the shipped tests
// call, and changes three things: the ports are free ones the kernel gave
// out (not a random range), every server listens on 127.0.0.1 only, and a
// server is up when `srvr` shows a Mode: line. The package's own check parses
// srvr with a pattern from ZooKeeper 3.4 that no 3.5+ server matches (its
// "built on" date and its fractional average latency), so with it no test
// would get past start-up on ZooKeeper 3.8 either.

package zk

import (
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TestServer is one member of a test cluster.
type TestServer struct {
	Port int
	Path string
	Srv  *Server
}

// TestCluster is the set of servers one test started.
type TestCluster struct {
	Path    string
	Servers []TestServer
}

// freePorts asks the kernel for n ports that are free now.
func freePorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// StartTestCluster starts size servers as one ensemble (standalone when 1).
func StartTestCluster(size int, stdout, stderr io.Writer) (*TestCluster, error) {
	root, err := ioutil.TempDir(os.Getenv("GOZK_WORK"), "cluster")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3 * size)
	if err != nil {
		return nil, err
	}
	cluster := &TestCluster{Path: root}
	started := false
	defer func() {
		if !started {
			cluster.Stop()
		}
	}()
	var members []string
	if size > 1 {
		for i := 0; i < size; i++ {
			members = append(members, fmt.Sprintf("server.%d=127.0.0.1:%d:%d", i+1, ports[3*i+1], ports[3*i+2]))
		}
	}
	for i := 0; i < size; i++ {
		dir := filepath.Join(root, fmt.Sprintf("srv%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		cfg := []string{
			"dataDir=" + dir,
			"tickTime=2000",
			"initLimit=10",
			"syncLimit=5",
			fmt.Sprintf("clientPort=%d", ports[3*i]),
			"clientPortAddress=127.0.0.1",
			"4lw.commands.whitelist=*",
			"admin.enableServer=false",
		}
		cfg = append(cfg, members...)
		cfgPath := filepath.Join(dir, "zoo.cfg")
		if err := ioutil.WriteFile(cfgPath, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := ioutil.WriteFile(filepath.Join(dir, "myid"), []byte(fmt.Sprintf("%d\n", i+1)), 0o600); err != nil {
			return nil, err
		}
		srv := &Server{ConfigPath: cfgPath, Stdout: stdout, Stderr: stderr}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		cluster.Servers = append(cluster.Servers, TestServer{Port: ports[3*i], Path: dir, Srv: srv})
	}
	if err := cluster.waitForStart(60, 500*time.Millisecond); err != nil {
		return nil, err
	}
	started = true
	return cluster, nil
}

// addrs lists the client addresses of every member.
func (tc *TestCluster) addrs() []string {
	out := make([]string, len(tc.Servers))
	for i, s := range tc.Servers {
		out[i] = fmt.Sprintf("127.0.0.1:%d", s.Port)
	}
	return out
}

// Connect opens a session on member idx alone.
func (tc *TestCluster) Connect(idx int) (*Conn, error) {
	zk, _, err := Connect([]string{tc.addrs()[idx]}, 15*time.Second)
	return zk, err
}

// ConnectAll opens a session that may use any member.
func (tc *TestCluster) ConnectAll() (*Conn, <-chan Event, error) {
	return tc.ConnectAllTimeout(15 * time.Second)
}

// ConnectAllTimeout is ConnectAll with the given session timeout.
func (tc *TestCluster) ConnectAllTimeout(sessionTimeout time.Duration) (*Conn, <-chan Event, error) {
	return tc.ConnectWithOptions(sessionTimeout)
}

// ConnectWithOptions is ConnectAll with the session timeout and client options given.
func (tc *TestCluster) ConnectWithOptions(sessionTimeout time.Duration, options ...connOption) (*Conn, <-chan Event, error) {
	return Connect(tc.addrs(), sessionTimeout, options...)
}

// Stop kills every member and removes the cluster's directories.
func (tc *TestCluster) Stop() error {
	for _, s := range tc.Servers {
		s.Srv.Stop()
	}
	os.RemoveAll(tc.Path)
	return nil
}

// serving reports whether the server at addr answers srvr with a Mode: line.
func serving(addr string) bool {
	out, err := fourLetterWord(addr, "srvr", time.Second)
	return err == nil && strings.Contains(string(out), "\nMode: ")
}

// waitForStart waits until every member serves.
func (tc *TestCluster) waitForStart(tries int, interval time.Duration) error {
	for i := 0; i < tries; i++ {
		up := true
		for _, addr := range tc.addrs() {
			up = up && serving(addr)
		}
		if up {
			return nil
		}
		time.Sleep(interval)
	}
	return fmt.Errorf("servers %v did not start serving", tc.addrs())
}

// member finds the member whose client address is server.
func (tc *TestCluster) member(server string) *Server {
	for _, s := range tc.Servers {
		if strings.HasSuffix(server, fmt.Sprintf(":%d", s.Port)) {
			return s.Srv
		}
	}
	panic(fmt.Sprintf("Unknown server: %s", server))
}

// StartServer starts the member at the given client address again.
func (tc *TestCluster) StartServer(server string) { tc.member(server).Start() }

// StopServer kills the member at the given client address.
func (tc *TestCluster) StopServer(server string) { tc.member(server).Stop() }

// StartAllServers starts every member again.
func (tc *TestCluster) StartAllServers() error {
	for _, s := range tc.Servers {
		if err := s.Srv.Start(); err != nil {
			return fmt.Errorf("starting the server on port %d: %v", s.Port, err)
		}
	}
	return nil
}

// StopAllServers kills every member.
func (tc *TestCluster) StopAllServers() error {
	for _, s := range tc.Servers {
		if err := s.Srv.Stop(); err != nil {
			return fmt.Errorf("stopping the server on port %d: %v", s.Port, err)
		}
	}
	return nil
}
