/// An 8-bit grayscale image of any size: what every decoder produces before normalisation.
struct GrayImage: Sendable, Equatable {
    var width: Int
    var height: Int
    /// Row-major, `width * height` values.
    var pixels: [UInt8]

    init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Applies an EXIF orientation (1...8) so the image is upright as a viewer would show it.
    /// Unknown values leave the image unchanged, as viewers do.
    func orientedForDisplay(exifOrientation orientation: Int) -> GrayImage {
        guard (2...8).contains(orientation) else { return self }
        let w = width
        let h = height
        let swapsSides = orientation >= 5
        let outWidth = swapsSides ? h : w
        let outHeight = swapsSides ? w : h
        var out = [UInt8](repeating: 0, count: w * h)
        // For each display position (x, y), the stored position it shows; see the EXIF 2.3 table
        // of the Orientation tag (0th row / 0th column meaning).
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                let sx: Int
                let sy: Int
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)  // mirrored horizontally
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)  // rotated 180°
                case 4: (sx, sy) = (x, h - 1 - y)  // mirrored vertically
                case 5: (sx, sy) = (y, x)  // transposed
                case 6: (sx, sy) = (y, h - 1 - x)  // needs 90° clockwise
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)  // transversed
                default: (sx, sy) = (w - 1 - y, x)  // 8: needs 90° counter-clockwise
                }
                out[y * outWidth + x] = pixels[sy * w + sx]
            }
        }
        return GrayImage(width: outWidth, height: outHeight, pixels: out)
    }
}
