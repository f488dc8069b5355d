"""A structure-aware fuzzer for every RPC of every server of the suite, found by server reflection.

For a target (a service, or the gateway), ``discover`` lists its services and methods over gRPC reflection and
builds their message classes from the descriptors it sends, so a new RPC is fuzzed without a line of test code.
``requests`` (hypothesis) draws requests for a method from its descriptor: every field type with its edge values
(empty, huge, negative, NaN, unknown enum numbers, long and odd Unicode strings), repeated fields from empty to
long, nested messages, oneofs, maps, and strings drawn from the suite's own vocabulary (styles, keys, roles, model
and track names) so requests get past the first check; bytes fields named like MIDI get hostile MIDI files (tempo
0, huge delta times, re-struck notes, truncated tracks, many tracks). Raw garbage bytes are sent as well.

A fault is a status of INTERNAL or UNKNOWN, UNAVAILABLE (an upstream that died), or a server that stops answering
its health check. ``fuzz`` returns per method the requests sent, the status codes seen and the faults.
"""

from maas_fuzz.core import FuzzReport, discover, fuzz  # noqa: F401
