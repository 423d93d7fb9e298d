"""The emulated TF Serving container's HTTP server, its workers and their supervisor's protocol."""

# Which model-server worker answered. Several workers can share one port (SO_REUSEPORT): the
# supervisor (local_stage/procs.py) counts a worker ready once /ping comes back with its own PID in
# this header.
PID_HEADER = "X-Local-Stage-Pid"
