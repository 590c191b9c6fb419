#!/usr/bin/env bash
# The main job: set up, start the daemon on its default socket (if not running), and run a demo
# with the real docker CLI against it. The daemon keeps running afterwards; pass --stop to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SOCK=/run/dockyard/dockyard.sock
PIDFILE=/run/dockyard/dockyard.pid
# ip_forward as it was before the first demo started the daemon (which enables it, as dockerd
# does): --stop puts it back even when the daemon was started by an earlier run
FORWARD_FILE=/run/dockyard-ip_forward-before
export DOCKER_HOST="unix://$SOCK"
if ! .venv/bin/python - <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("/run/dockyard/dockyard.sock"); sys.exit(0)
except OSError:
    sys.exit(1)
PY
then
  cat /proc/sys/net/ipv4/ip_forward > "$FORWARD_FILE"
  echo "== starting dockyard daemon (log: /var/log/dockyard.log)"
  mkdir -p /run/dockyard
  setsid .venv/bin/dockyard daemon --pidfile "$PIDFILE" >>/var/log/dockyard.log 2>&1 < /dev/null &
  for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
step() { echo; echo "\$ $*"; "$@"; }
step docker version
if ! docker image inspect bb >/dev/null 2>&1; then
  echo; echo "\$ <busybox rootfs tar> | docker import - bb:latest"
  .venv/bin/python -c 'import sys; from dockyard.testing.rootfs import busybox_rootfs_tar as t; sys.stdout.buffer.write(t())' | docker import - bb:latest
fi
step docker run --rm bb echo hello from a dockyard container
set +e; docker run --rm bb sh -c 'exit 3'; echo "exit code: $?"; set -e
docker rm -f demo-web >/dev/null 2>&1 || true
step docker run -d --name demo-web --memory 64m bb sh -c 'while true; do date; sleep 1; done'
step docker ps
sleep 1.2
step docker logs demo-web
step docker exec demo-web cat /etc/hostname
step docker top demo-web
step docker commit demo-web bb:demo
step docker history bb:demo
step docker images
step docker rm -f demo-web
docker rmi bb:demo >/dev/null
ctx=$(mktemp -d)
printf 'hello from a built image\n' > "$ctx/message"
printf 'FROM bb\nRUN echo built at step 2 > /built\nCOPY message /message\nCMD ["cat", "/built", "/message"]\n' > "$ctx/Dockerfile"
step docker build -t demo-built:1 "$ctx"
step docker build -t demo-built:1 "$ctx"     # fully cached the second time
step docker run --rm demo-built:1
rm -rf "$ctx"; docker rmi demo-built:1 >/dev/null
docker rm -f demo-httpd >/dev/null 2>&1 || true
docker volume rm demo-site >/dev/null 2>&1 || true
step docker volume create demo-site
step docker run --rm -v demo-site:/www bb sh -c 'echo "<h1>served by dockyard</h1>" > /www/index.html'
step docker run -d --name demo-httpd -p 127.0.0.1:8088:80 -v demo-site:/www:ro bb httpd -f -p 80 -h /www
step docker port demo-httpd
for _ in $(seq 50); do curl -sf http://127.0.0.1:8088/ >/dev/null && break; sleep 0.1; done
step curl -s http://127.0.0.1:8088/
docker network rm demo-net >/dev/null 2>&1 || true
step docker network create demo-net
step docker run -d --name demo-db --network demo-net --network-alias database bb sleep 60
step docker run --rm --network demo-net bb ping -c 1 database
docker rm -f demo-httpd demo-db >/dev/null; docker network rm demo-net >/dev/null; docker volume rm demo-site >/dev/null
step docker system df
if [ "${1:-}" = "--stop" ]; then
  pid=$(cat $PIDFILE); kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  # leave the host as we found it: default bridge, our iptables chains, ip_forward
  ip link del dockyard0 2>/dev/null || true
  .venv/bin/python -c 'from dockyard.host.firewall import Firewall; Firewall("DOCKYARD").teardown()'
  if [ -f "$FORWARD_FILE" ]; then cat "$FORWARD_FILE" > /proc/sys/net/ipv4/ip_forward; rm -f "$FORWARD_FILE"; fi
  for d in /sys/fs/cgroup/*/dockyard /sys/fs/cgroup/dockyard; do rmdir "$d" 2>/dev/null || true; done
  echo "daemon stopped"
else
  echo; echo "dockyard is running: export DOCKER_HOST=unix://$SOCK  (stop: kill \$(cat $PIDFILE))"
fi
