/// Runs blocking work (librdkafka round trips, curl transfers, model loading, fsync-heavy drains) on a
/// thread of its own and awaits its result, so Swift's cooperative pool is never blocked.
///
/// The body's error type carries through: a closure declared `throws(SomeError)` makes this throw
/// `SomeError`, and a non-throwing one makes it non-throwing.
package func onDedicatedThread<T: Sendable, Failure: Error>(
    _ name: String, _ body: @escaping @Sendable () throws(Failure) -> T
) async throws(Failure) -> T {
    let outcome: Result<T, Failure> = await withCheckedContinuation { continuation in
        // Not joined: the thread detaches when this reference goes away and ends when the body returned.
        _ = JoinableThread(name: name) {
            continuation.resume(returning: Result { () throws(Failure) -> T in try body() })
        }
    }
    return try outcome.get()
}
