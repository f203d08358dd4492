import COpenBLAS
import Foundation

/// Dedicated compute threads (pthreads, never Swift's cooperative pool) that share one plan.
///
/// Each worker owns an arena sized for one micro-batch. A submitted batch is cut into
/// micro-batches that idle workers take in turn, so a worker slowed by another process on the
/// machine simply takes fewer of them. One batch runs at a time; `run` blocks until it is done.
final class WorkerPool: @unchecked Sendable {
    // All mutable state below is guarded by `mutex`, except each worker's arena and timing row,
    // which only that worker touches while a batch runs (and readers touch only between batches).
    private let plan: ExecutionPlan
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let workAvailable: UnsafeMutablePointer<pthread_cond_t>
    private let workFinished: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []
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

        mutex = .allocate(capacity: 1)
        workAvailable = .allocate(capacity: 1)
        workFinished = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(workFinished, nil)

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
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(
                &thread, nil,
                { raw in
                    guard let raw else { return nil }
                    let context = Unmanaged<WorkerContext>.fromOpaque(raw).takeRetainedValue()
                    context.pool.workerLoop(index: context.index)
                    return nil
                }, context)
            if status != 0 {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                shutdown()
                throw InferenceError(
                    .engineStartFailed,
                    "Could not start inference worker thread \(index + 1) of \(threads) (pthread_create error \(status)); lower the thread count or free system resources."
                )
            }
            self.threads.append(thread)
        }
    }

    deinit {
        shutdown()
        for arena in arenas { UnsafeMutableRawPointer(arena).deallocate() }
        timings?.deallocate()
        microBatches.deallocate()
        pthread_cond_destroy(workAvailable)
        pthread_cond_destroy(workFinished)
        pthread_mutex_destroy(mutex)
        workAvailable.deallocate()
        workFinished.deallocate()
        mutex.deallocate()
    }

    /// Runs `count` images; blocks until every logit is written. Callers serialise (see engine).
    func run(pixels: UnsafePointer<UInt8>, count: Int, logits: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        pthread_mutex_lock(mutex)
        self.pixels = pixels
        self.logits = logits
        imageCount = count
        nextImage = 0
        finishedImages = 0
        // Split evenly across workers, but never beyond the arena's capacity.
        microBatch = max(1, min(plan.capacity, (count + threadCount - 1) / threadCount))
        pthread_cond_broadcast(workAvailable)
        while finishedImages < imageCount {
            pthread_cond_wait(workFinished, mutex)
        }
        self.pixels = nil
        self.logits = nil
        imageCount = 0
        pthread_mutex_unlock(mutex)
    }

    private func workerLoop(index: Int) {
        let arena = arenas[index]
        let stepTimes = timings.map { $0 + index * plan.steps.count }
        pthread_mutex_lock(mutex)
        while true {
            while !stopping && nextImage >= imageCount {
                pthread_cond_wait(workAvailable, mutex)
            }
            if stopping { break }
            guard let pixels, let logits else { continue }
            let first = nextImage
            let count = min(microBatch, imageCount - first)
            nextImage += count
            microBatches.pointee &+= 1
            pthread_mutex_unlock(mutex)

            plan.run(
                images: count, pixels: pixels + first * ModelInputShape.pixels,
                logits: logits + first * plan.outputSize, arena: arena, stepNanoseconds: stepTimes)

            pthread_mutex_lock(mutex)
            finishedImages += count
            if finishedImages == imageCount { pthread_cond_signal(workFinished) }
        }
        pthread_mutex_unlock(mutex)
    }

    /// Stops and joins the workers. Idempotent; must not race with `run` (the engine guarantees it).
    func shutdown() {
        pthread_mutex_lock(mutex)
        if joined {
            pthread_mutex_unlock(mutex)
            return
        }
        joined = true
        stopping = true
        pthread_cond_broadcast(workAvailable)
        pthread_mutex_unlock(mutex)
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    /// Seconds per step summed over workers, and the number of micro-batches run. Call between batches.
    func stepTimings() -> (seconds: [Double], microBatches: UInt64) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
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
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        timings?.update(repeating: 0, count: threadCount * plan.steps.count)
        microBatches.pointee = 0
    }
}

private final class WorkerContext {
    let pool: WorkerPool
    let index: Int

    init(pool: WorkerPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
