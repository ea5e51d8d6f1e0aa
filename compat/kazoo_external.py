"""pytest plugin: run kazoo's shipped tests against an already running server.

kazoo.testing.harness always spawns its own ZooKeeper cluster; this replaces
get_global_cluster() with a stand-in whose servers are the addresses in
KAZOO_EXTERNAL_SERVERS (comma-separated HOST:PORT). Servers cannot be
stopped/started from here, so tests that do that will fail.
"""
import os

import kazoo.testing.harness as harness


class ExternalServer:
    def __init__(self, address):
        self.address = address
        self.secure_address = address
        self.running = True

    def run(self):
        pass

    def stop(self):
        raise RuntimeError("external server %s cannot be stopped by the test" % self.address)

    def destroy(self):
        pass

    def reset(self):
        pass

    def get_logs(self, num_lines=100):
        return []


class ExternalCluster:
    def __init__(self, addresses):
        self._servers = [ExternalServer(a) for a in addresses]

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def start(self):
        pass

    def stop(self):
        pass

    def terminate(self):
        pass

    def reset(self):
        pass

    def get_logs(self):
        return []

    def get_ssl_client_configuration(self):
        raise RuntimeError("no TLS on the external cluster")


_CLUSTER = ExternalCluster(os.environ["KAZOO_EXTERNAL_SERVERS"].split(","))
harness.get_global_cluster = lambda: _CLUSTER
