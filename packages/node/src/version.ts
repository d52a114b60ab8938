/** The recorder's version, written into every record as `node_sdk_version`. */
export const POLICYSTRATA_NODE_SDK_VERSION = "2.0.0-dev.0";

/** The record format version, written into every record as `version`. */
export const POLICYSTRATA_NODE_TRACE_VERSION = "policystrata.node.trace.v1";
