/// Turns a grayscale image of any size into the model's input: 28x28, light garment on black.
///
/// Fashion-MNIST samples were made from product photos by trimming the product, scaling its longer
/// side to 28 pixels, centring it and negating it, so the garment is light on a black background.
/// This pipeline reproduces those conventions for arbitrary input:
///
/// 1. **Grayscale.** Done by the codecs (libpng's sRGB luminance, JPEG's Y channel); alpha has
///    already been composited over white.
/// 2. **Background estimate.** The median of a band along the border, `max(1, min(w, h) / 64)`
///    pixels wide. The median tolerates a garment that touches an edge.
/// 3. **Polarity.** Pixels more than `contrastThreshold` away from the background are counted as
///    darker or lighter than it. If most are darker (a garment photographed on a light background)
///    the image is inverted. If nothing stands out, a light background (>= 128) is inverted.
///    Dataset images have a black border and so are never inverted.
/// 4. **Already 28x28?** Then the image is taken to be dataset-style already: it is returned as is
///    (inverted if step 3 said so) and steps 5-8 are skipped, so dataset PNGs and raw payloads
///    pass through byte-identical.
/// 5. **Levels.** The (possibly inverted) background level is mapped to 0 and the rest stretched
///    linearly to 0...255, because the model only saw pure black backgrounds.
/// 6. **Crop** to the bounding box of the garment: rows (columns) with at least `max(1, w / 200)`
///    (`max(1, h / 200)`) pixels brighter than `contrastThreshold`. Isolated specks such as JPEG noise
///    or dust do not widen the box. With no garment found the whole image is kept.
/// 7. **Pad** the box to a square with the background value (0), the box centred exactly (the
///    half-pixel offsets of odd margins are honoured by step 8 rather than rounded away).
/// 8. **Resize** the square to 28x28 by area averaging: every output pixel is the mean of the
///    square region it covers, source pixels weighted by their fractional overlap (an exact box
///    filter, for shrinking and enlarging alike), rounded to the nearest integer.
enum Normalizer {
    /// The side length of the output.
    static let side = DecodedImage.side
    /// How far (in 0...255 levels) a pixel must differ from the background to count as garment.
    /// Large enough to ignore JPEG ringing and paper texture, small enough to keep pale fabrics.
    static let contrastThreshold = 32

    struct Output: Equatable {
        var pixels: [UInt8]
        var inverted: Bool
    }

    static func normalize(_ image: GrayImage) -> Output {
        let background = borderMedian(of: image)
        let inverted = garmentIsDarkerThanBackground(image, background: background)
        if image.width == side && image.height == side {
            return Output(pixels: inverted ? image.pixels.map { 255 &- $0 } : image.pixels, inverted: inverted)
        }
        var working = image
        applyLevels(to: &working, background: background, inverted: inverted)
        let box = garmentBounds(in: working)
        return Output(pixels: resampleCentred(working, crop: box), inverted: inverted)
    }

    // MARK: Steps

    static func borderMedian(of image: GrayImage) -> Int {
        let w = image.width
        let h = image.height
        let band = max(1, min(w, h) / 64)
        // On the stack: this runs for every image, and a heap array was a malloc and a free each time.
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 256) { histogram in
            histogram.initialize(repeating: 0)
            var count = 0
            image.pixels.withUnsafeBufferPointer { pixels in
                for y in 0..<h {
                    let rowStart = y * w
                    if y < band || y >= h - band || w <= 2 * band {
                        for x in 0..<w { histogram[Int(pixels[rowStart + x])] += 1 }
                        count += w
                    } else {
                        for x in 0..<band { histogram[Int(pixels[rowStart + x])] += 1 }
                        for x in (w - band)..<w { histogram[Int(pixels[rowStart + x])] += 1 }
                        count += 2 * band
                    }
                }
            }
            let middle = (count + 1) / 2
            var cumulative = 0
            for value in 0..<256 {
                cumulative += histogram[value]
                if cumulative >= middle { return value }
            }
            return 255
        }
    }

    static func garmentIsDarkerThanBackground(_ image: GrayImage, background: Int) -> Bool {
        let darkLimit = background - contrastThreshold
        let lightLimit = background + contrastThreshold
        var darker = 0
        var lighter = 0
        image.pixels.withUnsafeBufferPointer { pixels in
            // This runs for every image: 16 pixels at a time, counted in byte lanes (flushed before they can
            // wrap), then the few left over one by one. A limit outside 0...255 matches no pixel.
            let countsDarker = darkLimit > 0
            let countsLighter = lightLimit < 255
            let dark = SIMD16<UInt8>(repeating: UInt8(clamping: darkLimit))
            let light = SIMD16<UInt8>(repeating: UInt8(clamping: lightLimit))
            let one = SIMD16<UInt8>(repeating: 1)
            let zero = SIMD16<UInt8>()
            var darkLanes = zero
            var lightLanes = zero
            var lanesUsed = 0
            func flush() {
                darker &+= Int(SIMD16<UInt16>(truncatingIfNeeded: darkLanes).wrappedSum())
                lighter &+= Int(SIMD16<UInt16>(truncatingIfNeeded: lightLanes).wrappedSum())
                darkLanes = zero
                lightLanes = zero
                lanesUsed = 0
            }
            let raw = UnsafeRawBufferPointer(pixels)
            var index = 0
            while index + 16 <= pixels.count {
                let chunk = raw.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self)
                if countsDarker { darkLanes &+= one.replacing(with: 0, where: chunk .>= dark) }
                if countsLighter { lightLanes &+= one.replacing(with: 0, where: chunk .<= light) }
                lanesUsed += 1
                if lanesUsed == 255 { flush() }
                index += 16
            }
            flush()
            while index < pixels.count {
                let value = Int(pixels[index])
                darker &+= value < darkLimit ? 1 : 0
                lighter &+= value > lightLimit ? 1 : 0
                index += 1
            }
        }
        if darker == 0 && lighter == 0 { return background >= 128 }
        return darker > lighter
    }

    static func applyLevels(to image: inout GrayImage, background: Int, inverted: Bool) {
        let level = inverted ? 255 - background : background
        var table = [UInt8](repeating: 0, count: 256)
        for value in 0..<256 {
            let oriented = inverted ? 255 - value : value
            if level >= 255 {
                table[value] = UInt8(oriented)
            } else if oriented > level {
                let span = 255 - level
                table[value] = UInt8(((oriented - level) * 255 + span / 2) / span)
            }
        }
        table.withUnsafeBufferPointer { table in
            image.pixels.withUnsafeMutableBufferPointer { pixels in
                for index in pixels.indices { pixels[index] = table[Int(pixels[index])] }
            }
        }
    }

    struct Box: Equatable {
        var x: Int, y: Int, width: Int, height: Int
    }

    static func garmentBounds(in image: GrayImage) -> Box {
        let w = image.width
        let h = image.height
        var rowCounts = [Int](repeating: 0, count: h)
        var columnCounts = [Int](repeating: 0, count: w)
        image.pixels.withUnsafeBufferPointer { pixels in
            columnCounts.withUnsafeMutableBufferPointer { columnCounts in
                for y in 0..<h {
                    let row = UnsafeBufferPointer(rebasing: pixels[(y * w)..<(y * w + w)])
                    var inRow = 0
                    for x in 0..<w where Int(row[x]) > contrastThreshold {
                        inRow += 1
                        columnCounts[x] += 1
                    }
                    rowCounts[y] = inRow
                }
            }
        }
        let minimumPerRow = max(1, w / 200)
        let minimumPerColumn = max(1, h / 200)
        guard let top = rowCounts.firstIndex(where: { $0 >= minimumPerRow }),
            let bottom = rowCounts.lastIndex(where: { $0 >= minimumPerRow }),
            let left = columnCounts.firstIndex(where: { $0 >= minimumPerColumn }),
            let right = columnCounts.lastIndex(where: { $0 >= minimumPerColumn })
        else {
            return Box(x: 0, y: 0, width: w, height: h)
        }
        return Box(x: left, y: top, width: right - left + 1, height: bottom - top + 1)
    }

    /// Pads `crop` to a centred square of background (0) and area-averages it down (or up) to 28x28.
    static func resampleCentred(_ image: GrayImage, crop: Box) -> [UInt8] {
        let squareSide = max(crop.width, crop.height)
        let columns = AxisCoverage(sourceCount: crop.width, squareSide: squareSide, outputCount: side)
        let rows = AxisCoverage(sourceCount: crop.height, squareSide: squareSide, outputCount: side)

        // Horizontal pass: each cropped row becomes 28 partial sums.
        var rowSums = [Double](repeating: 0, count: crop.height * side)
        image.pixels.withUnsafeBufferPointer { pixels in
            rowSums.withUnsafeMutableBufferPointer { rowSums in
                for y in 0..<crop.height {
                    let sourceStart = (crop.y + y) * image.width + crop.x
                    let sumStart = y * side
                    for x in 0..<crop.width {
                        let value = pixels[sourceStart + x]
                        if value == 0 { continue }  // background contributes nothing; most pixels are background
                        columns.forEachEntry(ofSource: x) { output, weight in
                            rowSums[sumStart + output] += Double(value) * weight
                        }
                    }
                }
            }
        }
        // Vertical pass.
        var sums = [Double](repeating: 0, count: side * side)
        rowSums.withUnsafeBufferPointer { rowSums in
            sums.withUnsafeMutableBufferPointer { sums in
                for y in 0..<crop.height {
                    let sumStart = y * side
                    rows.forEachEntry(ofSource: y) { output, weight in
                        let outStart = output * side
                        for x in 0..<side { sums[outStart + x] += rowSums[sumStart + x] * weight }
                    }
                }
            }
        }
        let cellArea = columns.scale * rows.scale
        return sums.map { sum in
            let mean = (sum / cellArea).rounded(.toNearestOrAwayFromZero)
            return UInt8(max(0, min(255, mean)))
        }
    }
}

/// For one axis: how much of each source pixel falls into each output pixel, after the source is
/// centred in a square of `squareSide` pixels that is divided into `outputCount` equal cells.
struct AxisCoverage {
    /// Source pixels per output pixel (may be below 1 when enlarging).
    let scale: Double
    /// For source pixel i, `outputs[starts[i]..<starts[i + 1]]` are the output pixels it overlaps
    /// and `weights[...]` by how much (in source pixels).
    private var starts: [Int] = [0]
    private var outputs: [Int] = []
    private var weights: [Double] = []

    init(sourceCount: Int, squareSide: Int, outputCount: Int) {
        scale = Double(squareSide) / Double(outputCount)
        let offset = Double(squareSide - sourceCount) / 2
        starts.reserveCapacity(sourceCount + 1)
        for source in 0..<sourceCount {
            let start = offset + Double(source)
            let end = start + 1
            var output = max(0, Int((start / scale).rounded(.down)))
            while output < outputCount {
                let cellStart = Double(output) * scale
                if cellStart >= end { break }
                let overlap = min(end, cellStart + scale) - max(start, cellStart)
                if overlap > 0 {
                    outputs.append(output)
                    weights.append(overlap)
                }
                output += 1
            }
            starts.append(outputs.count)
        }
    }

    @inline(__always)
    func forEachEntry(ofSource source: Int, _ body: (_ output: Int, _ weight: Double) -> Void) {
        for index in starts[source]..<starts[source + 1] {
            body(outputs[index], weights[index])
        }
    }
}
