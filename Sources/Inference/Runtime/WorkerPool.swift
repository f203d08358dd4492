import COpenBLAS
import Threads

/// Dedicated compute threads (``JoinableThread``s, never Swift's cooperative pool) that share one plan.
///
/// Each worker owns an arena sized for one micro-batch. A submitted batch is cut into
/// micro-batches that idle workers take in turn, so a worker slowed by another process on the
/// machine simply takes fewer of them. One batch runs at a time; `run` blocks until it is done.
final class WorkerPool: @unchecked Sendable {
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

    private var pixels: UnsafePointer<UInt8>?
    private var logits: UnsafeMutablePointer<Float>?
    private var imageCount = 0
    private var microBatch = 1
    private var nextImage = 0
    private var finishedImages = 0
    private var stopping = false
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

    /// Runs `count` images; blocks until every logit is written. Callers serialise (see engine).
    func run(pixels: UnsafePointer<UInt8>, count: Int, logits: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        mutex.lock()
        self.pixels = pixels
        self.logits = logits
        imageCount = count
        nextImage = 0
        finishedImages = 0
        // Split evenly across workers, but never beyond the arena's capacity.
        microBatch = max(1, min(plan.capacity, (count + threadCount - 1) / threadCount))
        workAvailable.broadcast()
        while finishedImages < imageCount {
            workFinished.wait()
        }
        self.pixels = nil
        self.logits = nil
        imageCount = 0
        mutex.unlock()
    }

    private func workerLoop(index: Int) {
        let arena = arenas[index]
        let stepTimes = timings.map { $0 + index * plan.steps.count }
        mutex.lock()
        while true {
            while !stopping && nextImage >= imageCount {
                workAvailable.wait()
            }
            if stopping { break }
            guard let pixels, let logits else { continue }
            let first = nextImage
            let count = min(microBatch, imageCount - first)
            nextImage += count
            microBatches.pointee &+= 1
            mutex.unlock()

            plan.run(
                images: count, pixels: pixels + first * ModelInputShape.pixels,
                logits: logits + first * plan.outputSize, arena: arena, stepNanoseconds: stepTimes)

            mutex.lock()
            finishedImages += count
            if finishedImages == imageCount { workFinished.signal() }
        }
        mutex.unlock()
    }

    /// Stops and joins the workers. Idempotent; must not race with `run` (the engine guarantees it).
    func shutdown() {
        mutex.lock()
        if joined {
            mutex.unlock()
            return
        }
        joined = true
        stopping = true
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
