# Loopback port helpers for the scripts that start processes of their own
# (source it; it starts nothing).
#
#   free_port        prints a TCP port free on 127.0.0.1 now
#   wait_port PORT   waits (10 s at most) until something accepts on PORT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "${0##*/}: nothing listens on $1" >&2
    exit 1
}
