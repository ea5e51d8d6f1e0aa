// paddock's replacement for go-zookeeper's test-server launcher
// (zk/server_java.go), laid over the Debian package's copy with
// `go test -overlay`. The package runs `java -jar <ZooKeeper fat jar>`;
// this runs the command in $GOZK_SERVER with the member's zoo.cfg as its last
// argument (`paddock --config`, or compat/gozk_zookeeper.sh for the real
// ZooKeeper), and appends each process's PID to $GOZK_WORK/pids so that the
// runner can stop any that a failed test left behind.

package zk

import (
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Server is one server process of a test cluster.
type Server struct {
	ConfigPath     string
	Stdout, Stderr io.Writer

	cmd *exec.Cmd
}

// Start runs the server; it keeps running until Stop.
func (srv *Server) Start() error {
	argv := strings.Fields(os.Getenv("GOZK_SERVER"))
	if len(argv) == 0 {
		return fmt.Errorf("GOZK_SERVER is not set: the command that runs a server from a zoo.cfg")
	}
	srv.cmd = exec.Command(argv[0], append(argv[1:], srv.ConfigPath)...)
	srv.cmd.Stdout = orDiscard(srv.Stdout)
	srv.cmd.Stderr = orDiscard(srv.Stderr)
	if err := srv.cmd.Start(); err != nil {
		return err
	}
	pids, err := os.OpenFile(filepath.Join(os.Getenv("GOZK_WORK"), "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		fmt.Fprintln(pids, srv.cmd.Process.Pid)
		pids.Close()
	}
	return nil
}

// Stop kills the server at once (SIGKILL, as the package's own helper does) and reaps it.
func (srv *Server) Stop() error {
	if srv.cmd == nil || srv.cmd.Process == nil {
		return nil
	}
	srv.cmd.Process.Signal(syscall.SIGKILL)
	err := srv.cmd.Wait()
	srv.cmd = nil
	if exit, ok := err.(*exec.ExitError); ok && !exit.Exited() {
		return nil // killed by the signal above
	}
	return err
}

// orDiscard is w, or a sink when the test passed none.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return ioutil.Discard
	}
	return w
}
