"""A stock Python grpcio client (the gRPC C-core stack) against a running
PhantomNet agent, on grpcio's default channel options.

Usage: grpcio_client.py PROTO_DIR TARGET CIDR [CA CERT KEY]
  TARGET is a grpcio target, e.g. unix:///run/phantomnet/agent.sock or
  localhost:50443 (with CA/CERT/KEY: mutual TLS with the client's own
  certificate). Stubs are generated from PROTO_DIR into a temporary
  directory with grpcio-tools.

Checks health, reflection v1 and v1alpha, Status (read), and Block,
ListRules, Unblock, ListRules (write); prints one line per check and exits
non-zero on the first failure.
"""

import importlib
import subprocess
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

AGENT = "phantomnet.v1.Agent"
TIMEOUT = 10


def stubs(proto_dir, out):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
         f"--python_out={out}", f"--grpc_python_out={out}",
         "phantomnet/v1/agent.proto"],
        check=True,
    )
    sys.path.insert(0, out)
    return (importlib.import_module("phantomnet.v1.agent_pb2"),
            importlib.import_module("phantomnet.v1.agent_pb2_grpc"))


def list_services(channel, version):
    # grpcio-reflection ships only the v1alpha stubs; v1's messages are the
    # same on the wire, so v1 is called generically with the same types.
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = list(call(iter([req]), timeout=TIMEOUT))
    if len(replies) != 1 or not replies[0].HasField("list_services_response"):
        raise AssertionError(f"reflection {version}: unexpected reply {replies}")
    return sorted(s.name for s in replies[0].list_services_response.service)


def main():
    proto_dir, target, cidr = sys.argv[1:4]
    if len(sys.argv) == 7:
        ca, cert, key = (open(p, "rb").read() for p in sys.argv[4:7])
        creds = grpc.ssl_channel_credentials(ca, key, cert)
        channel = grpc.secure_channel(target, creds)
    elif len(sys.argv) == 4:
        channel = grpc.insecure_channel(target)
    else:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as out:
        pb, pb_grpc = stubs(proto_dir, out)
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", AGENT):
            st = health.Check(health_pb2.HealthCheckRequest(service=service),
                              timeout=TIMEOUT).status
            assert st == health_pb2.HealthCheckResponse.SERVING, (service, st)
            print(f"health {service or '(server)'}: SERVING")
        for version in ("v1", "v1alpha"):
            names = list_services(channel, version)
            assert AGENT in names and "grpc.health.v1.Health" in names, names
            print(f"reflection {version}: {' '.join(names)}")
        agent = pb_grpc.AgentStub(channel)
        status = agent.Status(pb.StatusRequest(), timeout=TIMEOUT)
        assert status.version, status
        print(f"status: version {status.version}")
        rule = agent.Block(pb.BlockRequest(cidr=cidr, ttl_seconds=600,
                                           reason="grpcio"), timeout=TIMEOUT).rule
        # The agent records who made the rule: "api: <reason>".
        assert rule.action == pb.ACTION_BLOCK and rule.reason == "api: grpcio", rule
        listed = agent.ListRules(pb.ListRulesRequest(action=pb.ACTION_BLOCK),
                                 timeout=TIMEOUT).rules
        assert [r.cidr for r in listed] == [rule.cidr], listed
        print(f"block: {rule.cidr} listed")
        removed = agent.Unblock(pb.PrefixRequest(cidr=cidr), timeout=TIMEOUT)
        assert removed.cidr == rule.cidr, removed
        listed = agent.ListRules(pb.ListRulesRequest(action=pb.ACTION_BLOCK),
                                 timeout=TIMEOUT).rules
        assert not listed, listed
        print(f"unblock: {removed.cidr} gone")
    channel.close()


if __name__ == "__main__":
    main()
