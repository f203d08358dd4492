/// The container a payload arrived in, as detected from its bytes.
package enum ImageFormat: String, Sendable, Codable, CaseIterable {
    /// PNG, any colour type and bit depth, interlaced or not.
    case png
    /// Baseline or progressive JPEG (grayscale, YCbCr, or CMYK/YCCK).
    case jpeg
    /// Exactly 784 bytes: a 28x28 grayscale image, row-major, one byte per pixel.
    case raw
    /// The original Python system's JSON object with an `img_data` 2-D array.
    case prototypeJSON = "prototype-json"
}

/// A payload decoded and normalised to the model's input: 28x28 grayscale, light garment on a dark
/// background, exactly like a Fashion-MNIST sample.
package struct DecodedImage: Sendable, Equatable {
    /// The side length of the model's input.
    package static let side = 28
    /// The number of pixels of the model's input (`side * side` = 784).
    package static let pixelCount = side * side

    /// Exactly 784 bytes, row-major (row 0 first), 0 = background black, 255 = brightest garment.
    package var pixels: [UInt8]
    /// The detected container format.
    package var format: ImageFormat
    /// Width as stored in the payload (PNG IHDR, JPEG SOF before EXIF rotation, JSON columns, 28 for raw).
    package var sourceWidth: Int
    /// Height as stored in the payload (PNG IHDR, JPEG SOF before EXIF rotation, JSON rows, 28 for raw).
    package var sourceHeight: Int
    /// The prototype JSON's `"model"` member, if present and non-empty.
    package var requestedModel: String?
    /// The prototype JSON's `"time"` member as text: a string's contents or a number's literal.
    package var prototypeTime: String?
    /// Whether normalisation inverted the image because the garment was darker than its background
    /// (a product photo on white) rather than lighter (a dataset image).
    package var backgroundInverted: Bool

    /// Creates a decoded image; `pixels` must hold exactly 784 values.
    package init(
        pixels: [UInt8],
        format: ImageFormat,
        sourceWidth: Int,
        sourceHeight: Int,
        requestedModel: String? = nil,
        prototypeTime: String? = nil,
        backgroundInverted: Bool = false
    ) {
        precondition(pixels.count == Self.pixelCount, "a decoded image has exactly 784 pixels")
        self.pixels = pixels
        self.format = format
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.requestedModel = requestedModel
        self.prototypeTime = prototypeTime
        self.backgroundInverted = backgroundInverted
    }

    /// The pixels scaled to 0...1 (`value / 255`), the usual input scaling of a Fashion-MNIST model.
    package var unitIntervalPixels: [Float] {
        pixels.map { Float($0) / 255 }
    }
}
