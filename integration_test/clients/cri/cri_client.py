#!/usr/bin/env python3
"""A small CRI client: drives a CRI runtime (containerd's CRI plugin) over its
gRPC socket with the calls the kubelet makes, one call per invocation, the way
crictl does (crictl is not packaged in Debian 12).

    cri_client.py --socket PATH --gen DIR COMMAND [ARGS...]

DIR holds cri_pb2.py and cri_pb2_grpc.py, generated from cri.proto (next to
this file) by grpc_tools.protoc. Configs are JSON files in the proto's field
names (like crictl's pod/container configs). Replies are printed as JSON with
proto field names; ids are printed bare. A failed call prints
"cri: METHOD: CODE: DETAILS" on stderr and exits 125 (exec-sync exits with the
command's own status otherwise).

Commands:
  version | status
  image-status IMAGE
  runp --handler NAME POD.json          RunPodSandbox; prints the pod id
  inspectp ID                           PodSandboxStatus (verbose, info decoded)
  pods                                  ListPodSandbox
  stopp ID | rmp ID                     StopPodSandbox | RemovePodSandbox
  create POD_ID CONTAINER.json POD.json CreateContainer; prints the container id
  start ID | rm ID                      StartContainer | RemoveContainer
  stop [--timeout S] ID                 StopContainer
  inspect ID                            ContainerStatus (verbose, info decoded)
  ps [--pod ID]                         ListContainers
  exec-sync [--timeout S] ID CMD...     ExecSync: the command's stdout, stderr, exit code
  stats ID                              ContainerStats
"""

import argparse
import json
import sys

EXIT_CALL_FAILED = 125


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def as_json(msg, json_format):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def decode_info(reply):
    """The verbose "info" map holds JSON strings: decode them so one JSON
    document comes out."""
    out = {}
    for key, value in reply.get("info", {}).items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    reply["info"] = out
    return reply


def parse_args(argv):
    p = argparse.ArgumentParser(prog="cri_client.py")
    p.add_argument("--socket", required=True, help="the CRI gRPC unix socket")
    p.add_argument("--gen", required=True, help="directory of cri_pb2*.py")
    p.add_argument("--call-timeout", type=float, default=60.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    sub.add_parser("status")
    sub.add_parser("pods")
    sub.add_parser("image-status").add_argument("image")
    runp = sub.add_parser("runp")
    runp.add_argument("--handler", default="")
    runp.add_argument("pod_config")
    for name in ("inspectp", "stopp", "rmp", "start", "rm", "inspect", "stats"):
        sub.add_parser(name).add_argument("id")
    create = sub.add_parser("create")
    create.add_argument("pod_id")
    create.add_argument("container_config")
    create.add_argument("pod_config")
    stop = sub.add_parser("stop")
    stop.add_argument("--timeout", type=int, default=0)
    stop.add_argument("id")
    sub.add_parser("ps").add_argument("--pod", default="")
    ex = sub.add_parser("exec-sync")
    ex.add_argument("--timeout", type=int, default=0)
    ex.add_argument("id")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    sys.path.insert(0, args.gen)
    import grpc  # pylint: disable=import-outside-toplevel
    from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
    import cri_pb2 as pb  # pylint: disable=import-outside-toplevel
    import cri_pb2_grpc as pb_grpc  # pylint: disable=import-outside-toplevel

    channel = grpc.insecure_channel("unix://" + args.socket)
    rt = pb_grpc.RuntimeServiceStub(channel)
    img = pb_grpc.ImageServiceStub(channel)
    cmd = args.cmd

    def call(method, request):
        try:
            return method(request, timeout=args.call_timeout)
        except grpc.RpcError as e:
            name = type(request).__name__.removesuffix("Request")
            print(f"cri: {name}: {e.code().name}: {e.details()}", file=sys.stderr)
            sys.exit(EXIT_CALL_FAILED)

    def show(reply, verbose_info=False):
        d = as_json(reply, json_format)
        if verbose_info:
            d = decode_info(d)
        print(json.dumps(d, indent=1, sort_keys=True))

    def pod_config(path):
        return json_format.ParseDict(load(path), pb.PodSandboxConfig())

    if cmd == "version":
        show(call(rt.Version, pb.VersionRequest(version="v1")))
    elif cmd == "status":
        show(call(rt.Status, pb.StatusRequest(verbose=False)))
    elif cmd == "image-status":
        show(call(img.ImageStatus, pb.ImageStatusRequest(image=pb.ImageSpec(image=args.image))))
    elif cmd == "runp":
        req = pb.RunPodSandboxRequest(config=pod_config(args.pod_config), runtime_handler=args.handler)
        print(call(rt.RunPodSandbox, req).pod_sandbox_id)
    elif cmd == "inspectp":
        show(call(rt.PodSandboxStatus, pb.PodSandboxStatusRequest(pod_sandbox_id=args.id, verbose=True)), True)
    elif cmd == "pods":
        show(call(rt.ListPodSandbox, pb.ListPodSandboxRequest()))
    elif cmd == "stopp":
        call(rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=args.id))
    elif cmd == "rmp":
        call(rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=args.id))
    elif cmd == "create":
        config = json_format.ParseDict(load(args.container_config), pb.ContainerConfig())
        req = pb.CreateContainerRequest(
            pod_sandbox_id=args.pod_id, config=config, sandbox_config=pod_config(args.pod_config)
        )
        print(call(rt.CreateContainer, req).container_id)
    elif cmd == "start":
        call(rt.StartContainer, pb.StartContainerRequest(container_id=args.id))
    elif cmd == "stop":
        call(rt.StopContainer, pb.StopContainerRequest(container_id=args.id, timeout=args.timeout))
    elif cmd == "rm":
        call(rt.RemoveContainer, pb.RemoveContainerRequest(container_id=args.id))
    elif cmd == "inspect":
        show(call(rt.ContainerStatus, pb.ContainerStatusRequest(container_id=args.id, verbose=True)), True)
    elif cmd == "ps":
        flt = pb.ContainerFilter(pod_sandbox_id=args.pod)
        show(call(rt.ListContainers, pb.ListContainersRequest(filter=flt)))
    elif cmd == "stats":
        show(call(rt.ContainerStats, pb.ContainerStatsRequest(container_id=args.id)))
    elif cmd == "exec-sync":
        argv_ = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        req = pb.ExecSyncRequest(container_id=args.id, cmd=argv_, timeout=args.timeout)
        reply = call(rt.ExecSync, req)
        sys.stdout.buffer.write(reply.stdout)
        sys.stderr.buffer.write(reply.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        return reply.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
