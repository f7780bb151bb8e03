#!/usr/bin/env python3
"""A small TCP exchange with an echo server, run inside a network namespace (nsenter --net).

  tcp_probe.py HOST PORT ROUNDS   connects, sends a 16-byte message ROUNDS times and reads each
                                  echo back; prints "ok CONNECT_US MEDIAN_US P90_US" on success
                                  or "fail WHY" (exit 1).
"""
import socket
import sys
import time


def main():
    host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    msg = b"crid-flannel-01\n"
    try:
        t0 = time.perf_counter()
        s = socket.create_connection((host, port), timeout=5)
        connect_us = (time.perf_counter() - t0) * 1e6
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        for _ in range(rounds):
            t = time.perf_counter()
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    raise OSError("connection closed after %d bytes" % len(got))
                got += chunk
            rtts.append((time.perf_counter() - t) * 1e6)
            if got != msg:
                raise OSError("echo differs: %r" % got)
        s.close()
    except OSError as e:
        print("fail %s" % e)
        return 1
    rtts.sort()
    print("ok %.0f %.0f %.0f" % (connect_us, rtts[len(rtts) // 2], rtts[int(len(rtts) * 0.9)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
