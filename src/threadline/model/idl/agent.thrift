# The Jaeger agent's UDP interface as threadline reads it: each datagram is one oneway call
# message. Declared from the documented method name and argument id.

include "jaeger.thrift"

namespace py threadline_jaeger_agent

service Agent {
    oneway void emitBatch(1: jaeger.Batch batch),
}
