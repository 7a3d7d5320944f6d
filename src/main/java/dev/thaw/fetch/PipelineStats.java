package dev.thaw.fetch;

/**
 * A snapshot of a pipeline's counters.
 *
 * @param fetched chunks fetched and verified
 * @param bytesFetched raw blob bytes read from the store
 * @param bytesDecoded plain bytes produced
 * @param zeroChunks zero chunks served without a fetch
 * @param joined requests that joined a fetch already in flight (single flight)
 * @param retries store attempts repeated after a transient fault or a bad body
 * @param errors chunks that failed for good
 * @param inFlight fetches under way now (queued requests not counted)
 * @param queued requests waiting for a fetch slot
 * @param latencyP50Micros median store fetch latency (one attempt, incl. body)
 * @param latencyP99Micros 99th percentile of the same
 */
public record PipelineStats(
    long fetched,
    long bytesFetched,
    long bytesDecoded,
    long zeroChunks,
    long joined,
    long retries,
    long errors,
    int inFlight,
    int queued,
    long latencyP50Micros,
    long latencyP99Micros) {}
