"""`make bench`: the service's cold start, per-request overhead, calls, connections, memory and artifact.

Every time is measured in one run beside its floor (the same work done with bare boto3 and requests),
alternating the two, and reported as medians with the ratio. See docs/performance.md.
"""
