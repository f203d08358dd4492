import ArgumentParser
import Foundation
import Imaging

/// `fashion-bench decode`: the decode stage alone (PNG/JPEG/raw bytes -> normalised 28x28 model input), per
/// image, on one thread: what each partition reader spends per message before the engine sees it.
struct DecodeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode + normalise cost per image (one thread), over a directory of encoded images.",
        discussion: """
            Reads every *.png / *.jpg / *.raw file of --dir (default: the 200 Fashion-MNIST test PNGs the tests \
            use), decodes --images of them in turn with the daemon's ImageDecoder, and prints µs per image \
            (best of --rounds). For stable counts on a shared machine run it under \
            `valgrind --tool=callgrind` with a small --images and divide the instruction count by it.
            """
    )

    @Option(help: "Directory of encoded images.")
    var dir: String = "Tests/Fixtures/images/testset"

    @Option(help: "Images decoded per round (cycling through the directory).")
    var images: Int = 200_000

    @Option(help: "Rounds; the fastest counts.")
    var rounds: Int = 3

    mutating func run() throws {
        guard images > 0, rounds > 0 else { throw ValidationError("--images and --rounds must be positive") }
        let directory = URL(fileURLWithPath: dir)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted().filter {
            $0.hasSuffix(".png") || $0.hasSuffix(".jpg") || $0.hasSuffix(".raw")
        }
        let payloads = try names.map { [UInt8](try Data(contentsOf: directory.appendingPathComponent($0))) }
        guard !payloads.isEmpty else { throw ValidationError("no .png, .jpg or .raw files in \(dir)") }
        let decoder = ImageDecoder()
        var best = Double.infinity
        var checksum = 0
        for round in 1...rounds {
            let start = DispatchTime.now().uptimeNanoseconds
            for index in 0..<images {
                let image = try decoder.decode(payloads[index % payloads.count])
                checksum &+= Int(image.pixels[index % image.pixels.count])
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, seconds)
            print("round \(round): \(images) images in \(String(format: "%.3f", seconds)) s")
        }
        let meanBytes = payloads.reduce(0) { $0 + $1.count } / payloads.count
        print(
            "decode: \(payloads.count) files (mean \(meanBytes) bytes), \(String(format: "%.2f", best / Double(images) * 1e6)) µs per image, "
                + "\(String(format: "%.0f", Double(images) / best)) images/s on one thread (checksum \(checksum))")
    }
}
