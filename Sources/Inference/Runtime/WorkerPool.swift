import COpenBLAS
import Glibc
import Threads

/// Dedicated compute threads (``JoinableThread``s, never Swift's cooperative pool) that share one plan.
///
/// Each worker owns an arena sized for one micro-batch. A submitted batch (a ``Job``) is cut into
/// micro-batches that idle workers take in turn, so a worker slowed by another process on the
/// machine simply takes fewer of them. Several jobs may be in flight: their micro-batches are taken
/// oldest job first, so a worker that finishes its part of one batch starts on the next instead of
/// waiting for the other workers (with one batch at a time, a worker preempted by another thread left
/// its sibling idle at the end of every batch).
final class WorkerPool: @unchecked Sendable {
    /// One submitted batch. Its fields are guarded by the pool's mutex.
    final class Job: @unchecked Sendable {
        fileprivate let pixels: UnsafePointer<UInt8>
        fileprivate let logits: UnsafeMutablePointer<Float>
        fileprivate let imageCount: Int
        fileprivate let microBatch: Int
        fileprivate var nextImage = 0
        fileprivate var finishedImages = 0
        /// Monotonic nanoseconds when a worker took its first micro-batch and when the last one finished.
        fileprivate var startedNanos: UInt64 = 0
        fileprivate var finishedNanos: UInt64 = 0

        fileprivate init(pixels: UnsafePointer<UInt8>, logits: UnsafeMutablePointer<Float>, count: Int, microBatch: Int)
        {
            self.pixels = pixels
            self.logits = logits
            self.imageCount = count
            self.microBatch = microBatch
        }
    }

    // All mutable state below is guarded by `mutex`, except each worker's arena and timing row,
    // which only that worker touches while a batch runs (and readers touch only between batches).
    private let plan: ExecutionPlan
    private let mutex = ConditionMutex()
    private let workAvailable: ConditionVariable
    private let workFinished: ConditionVariable
    private var threads: [JoinableThread] = []
    private let arenas: [UnsafeMutablePointer<Float>]
    private let timings: UnsafeMutablePointer<UInt64>?
    private let microBatches: UnsafeMutablePointer<UInt64>

    /// Jobs with micro-batches no worker has taken yet, oldest first.
    private var waiting: [Job] = []
    /// Set by ``shutdown()``: no new jobs; the workers finish the queued ones, then exit.
    private var closed = false
    private var joined = false

    let threadCount: Int

    init(plan: ExecutionPlan, threads: Int, collectTimings: Bool) throws(InferenceError) {
        self.plan = plan
        self.threadCount = threads
        // Each worker runs its own single-threaded sgemm; OpenBLAS's own threads would only fight them.
        openblas_set_num_threads(1)

        workAvailable = ConditionVariable(mutex: mutex)
        workFinished = ConditionVariable(mutex: mutex)

        var arenas: [UnsafeMutablePointer<Float>] = []
        for _ in 0..<threads {
            let raw = UnsafeMutableRawPointer.allocate(
                byteCount: max(plan.arenaFloats, 1) * MemoryLayout<Float>.stride, alignment: 64)
            // Touch every page now, so memory use is flat from the first batch on.
            raw.initializeMemory(as: Float.self, repeating: 0, count: max(plan.arenaFloats, 1))
            arenas.append(raw.assumingMemoryBound(to: Float.self))
        }
        self.arenas = arenas
        if collectTimings {
            let timings = UnsafeMutablePointer<UInt64>.allocate(capacity: threads * plan.steps.count)
            timings.initialize(repeating: 0, count: threads * plan.steps.count)
            self.timings = timings
        } else {
            timings = nil
        }
        microBatches = .allocate(capacity: 1)
        microBatches.initialize(to: 0)

        for index in 0..<threads {
            do {
                // The worker holds the pool until shutdown() stops it.
                self.threads.append(
                    try JoinableThread.spawn(name: "infer-worker-\(index)") { [self] in workerLoop(index: index) })
            } catch {
                shutdown()
                throw InferenceError(
                    .engineStartFailed,
                    "Could not start inference worker thread \(index + 1) of \(threads) (pthread_create error \(error.code)); lower the thread count or free system resources."
                )
            }
        }
    }

    deinit {
        shutdown()
        for arena in arenas { UnsafeMutableRawPointer(arena).deallocate() }
        timings?.deallocate()
        microBatches.deallocate()
    }

    /// Queues `count` (> 0) images; the workers write their outputs to `logits`. Both buffers must stay
    /// valid until ``wait(for:)`` returns. Nil once ``shutdown()`` began.
    func submit(pixels: UnsafePointer<UInt8>, count: Int, logits: UnsafeMutablePointer<Float>) -> Job? {
        precondition(count > 0, "a job holds at least one image")
        // Split evenly across workers, but never beyond the arena's capacity.
        let microBatch = max(1, min(plan.capacity, (count + threadCount - 1) / threadCount))
        let job = Job(pixels: pixels, logits: logits, count: count, microBatch: microBatch)
        mutex.lock()
        defer { mutex.unlock() }
        guard !closed else { return nil }
        waiting.append(job)
        workAvailable.broadcast()
        return job
    }

    /// Blocks until every output of `job` is written. Returns when its first micro-batch started and
    /// when its last finished (monotonic nanoseconds).
    @discardableResult
    func wait(for job: Job) -> (startedNanos: UInt64, finishedNanos: UInt64) {
        mutex.lock()
        defer { mutex.unlock() }
        while job.finishedImages < job.imageCount { workFinished.wait() }
        return (job.startedNanos, job.finishedNanos)
    }

    /// Runs `count` images; blocks until every logit is written.
    func run(pixels: UnsafePointer<UInt8>, count: Int, logits: UnsafeMutablePointer<Float>) -> Bool {
        guard count > 0 else { return true }
        guard let job = submit(pixels: pixels, count: count, logits: logits) else { return false }
        wait(for: job)
        return true
    }

    private func workerLoop(index: Int) {
        let arena = arenas[index]
        let stepTimes = timings.map { $0 + index * plan.steps.count }
        mutex.lock()
        while true {
            while waiting.isEmpty && !closed { workAvailable.wait() }
            guard let job = waiting.first else { break }  // closed, and every queued job handed out
            let first = job.nextImage
            let count = min(job.microBatch, job.imageCount - first)
            job.nextImage += count
            if first == 0 { job.startedNanos = Self.monotonicNanos() }
            if job.nextImage == job.imageCount { waiting.removeFirst() }
            microBatches.pointee &+= 1
            mutex.unlock()

            plan.run(
                images: count, pixels: job.pixels + first * ModelInputShape.pixels,
                logits: job.logits + first * plan.outputSize, arena: arena, stepNanoseconds: stepTimes)

            let finished = Self.monotonicNanos()
            mutex.lock()
            job.finishedImages += count
            if job.finishedImages == job.imageCount {
                job.finishedNanos = finished
                workFinished.broadcast()
            }
        }
        mutex.unlock()
    }

    static func monotonicNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Stops new jobs, lets the workers finish the queued ones, and joins them. Idempotent.
    func shutdown() {
        mutex.lock()
        if joined {
            mutex.unlock()
            return
        }
        joined = true
        closed = true
        workAvailable.broadcast()
        mutex.unlock()
        for thread in threads { thread.join() }
        threads.removeAll()
    }

    /// Seconds per step summed over workers, and the number of micro-batches run. Call between batches.
    func stepTimings() -> (seconds: [Double], microBatches: UInt64) {
        mutex.lock()
        defer { mutex.unlock() }
        var seconds = [Double](repeating: 0, count: plan.steps.count)
        if let timings {
            for worker in 0..<threadCount {
                for step in 0..<plan.steps.count {
                    seconds[step] += Double(timings[worker * plan.steps.count + step]) / 1e9
                }
            }
        }
        return (seconds, microBatches.pointee)
    }

    func resetTimings() {
        mutex.lock()
        defer { mutex.unlock() }
        timings?.update(repeating: 0, count: threadCount * plan.steps.count)
        microBatches.pointee = 0
    }
}
