"""Local multi-process launcher: N processes on this machine, each with D CPU devices, joined
by jax.distributed through a coordinator on localhost. The same code path as a pod, for
testing multi-host logic without one.

    python -m launch.local --num_processes=2 --devices_per_process=4 -- \\
        python -m pipnet_jax.main --config configs/synthetic.py --workdir /tmp/run

Each process's output goes to <log_dir>/process_<i>.log (and process 0's to the terminal), its
pid to <log_dir>/process_<i>.pid (to signal one process, as a preemption does).
If one process fails, the others are stopped and the exit code is non-zero."""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(command: list[str], num_processes: int, devices_per_process: int, log_dir: str,
           timeout: float | None = None) -> int:
    os.makedirs(log_dir, exist_ok=True)
    coordinator = f"127.0.0.1:{free_port()}"
    procs, logs = [], []
    for i in range(num_processes):
        env = dict(os.environ,
                   JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}",
                   PIPNET_DISTRIBUTED="1", PIPNET_COORDINATOR=coordinator,
                   PIPNET_NUM_PROCESSES=str(num_processes), PIPNET_PROCESS_ID=str(i))
        log = open(os.path.join(log_dir, f"process_{i}.log"), "w")
        logs.append(log)
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        with open(os.path.join(log_dir, f"process_{i}.pid"), "w") as f:
            f.write(f"{procs[-1].pid}\n")
    deadline = None if timeout is None else time.monotonic() + timeout
    code = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p for p in procs if p.poll() not in (None, 0)]
            if failed or (deadline and time.monotonic() > deadline):
                code = failed[0].returncode if failed else 124
                break
            time.sleep(0.2)
        else:
            code = max(p.returncode for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
    return code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_processes", type=int, default=2)
    parser.add_argument("--devices_per_process", type=int, default=4)
    parser.add_argument("--log_dir", default="workdirs/launch_logs")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before all are stopped")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    code = launch(command, args.num_processes, args.devices_per_process, args.log_dir, args.timeout)
    with open(os.path.join(args.log_dir, "process_0.log")) as f:
        sys.stdout.write(f.read())
    if code:
        print(f"launch.local: a process failed with exit code {code}; logs in {args.log_dir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
