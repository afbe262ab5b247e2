import CMobileNetV3

/// The error every throwing API of this module reports.
///
/// It carries the status code of the C library (or one of the Swift-side codes for image
/// decoding) and a message that says which argument, field or file was wrong and why.
public struct MobileNetV3Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, as a status code. The values below 1000 are those of `mnv3_status`.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let nullArgument = Code(rawValue: Int32(MNV3_ERR_NULL_ARGUMENT.rawValue))
        public static let invalidArgument = Code(rawValue: Int32(MNV3_ERR_INVALID_ARGUMENT.rawValue))
        public static let shape = Code(rawValue: Int32(MNV3_ERR_SHAPE.rawValue))
        public static let arenaTooSmall = Code(rawValue: Int32(MNV3_ERR_ARENA_TOO_SMALL.rawValue))
        public static let arenaMisaligned = Code(rawValue: Int32(MNV3_ERR_ARENA_MISALIGNED.rawValue))
        public static let outOfMemory = Code(rawValue: Int32(MNV3_ERR_OUT_OF_MEMORY.rawValue))
        public static let io = Code(rawValue: Int32(MNV3_ERR_IO.rawValue))
        public static let unsupported = Code(rawValue: Int32(MNV3_ERR_UNSUPPORTED.rawValue))
        public static let fileTruncated = Code(rawValue: Int32(MNV3_ERR_FILE_TRUNCATED.rawValue))
        public static let badMagic = Code(rawValue: Int32(MNV3_ERR_BAD_MAGIC.rawValue))
        public static let badVersion = Code(rawValue: Int32(MNV3_ERR_BAD_VERSION.rawValue))
        public static let badEndianness = Code(rawValue: Int32(MNV3_ERR_BAD_ENDIANNESS.rawValue))
        public static let checksum = Code(rawValue: Int32(MNV3_ERR_CHECKSUM.rawValue))
        public static let sizeOverflow = Code(rawValue: Int32(MNV3_ERR_SIZE_OVERFLOW.rawValue))
        public static let badOffset = Code(rawValue: Int32(MNV3_ERR_BAD_OFFSET.rawValue))
        public static let badEnum = Code(rawValue: Int32(MNV3_ERR_BAD_ENUM.rawValue))
        public static let shapeChain = Code(rawValue: Int32(MNV3_ERR_SHAPE_CHAIN.rawValue))
        public static let badLayer = Code(rawValue: Int32(MNV3_ERR_BAD_LAYER.rawValue))
        public static let badTensor = Code(rawValue: Int32(MNV3_ERR_BAD_TENSOR.rawValue))
        public static let badMetadata = Code(rawValue: Int32(MNV3_ERR_BAD_METADATA.rawValue))
        public static let misalignedData = Code(rawValue: Int32(MNV3_ERR_MISALIGNED_DATA.rawValue))
        /// A quantization scale is not finite and positive.
        public static let badScale = Code(rawValue: Int32(MNV3_ERR_BAD_SCALE.rawValue))
        /// A quantization zero point is outside [-128, 127].
        public static let badZeroPoint = Code(rawValue: Int32(MNV3_ERR_BAD_ZERO_POINT.rawValue))
        /// A real multiplier of a quantized op has no fixed-point form.
        public static let badMultiplier = Code(rawValue: Int32(MNV3_ERR_BAD_MULTIPLIER.rawValue))
        /// A bias scale is not the input scale times the weight scale.
        public static let badBiasScale = Code(rawValue: Int32(MNV3_ERR_BAD_BIAS_SCALE.rawValue))
        /// A quantized activation range or lookup table is inconsistent.
        public static let badQuantRange = Code(rawValue: Int32(MNV3_ERR_BAD_QUANT_RANGE.rawValue))

        /// An image file exists but could not be decoded: truncated, corrupt or malformed.
        public static let badImage = Code(rawValue: 1000)
        /// A file is not in any image format this module reads (PNG, JPEG, PPM P6, PGM P5).
        public static let unsupportedImageFormat = Code(rawValue: 1001)
        /// A `.npy` file is malformed or of a type this operation does not accept.
        public static let badArray = Code(rawValue: 1002)
        /// An image claims more pixels than the limit (``Image/defaultMaxPixels`` unless
        /// raised) or a side longer than 65535 pixels, or a progressive JPEG needs more
        /// coefficient memory than the limit allows.
        public static let imageTooLarge = Code(rawValue: 1003)

        /// The C library's short description of the status, or a Swift-side one.
        public var description: String {
            switch self {
            case .badImage: return "corrupt or truncated image"
            case .unsupportedImageFormat: return "unsupported image format"
            case .badArray: return "bad array file"
            case .imageTooLarge: return "image too large"
            default:
                guard let text = mnv3_status_string(mnv3_status(rawValue: UInt32(bitPattern: rawValue))) else {
                    return "status \(rawValue)"
                }
                return String(cString: text)
            }
        }
    }

    /// The status code.
    public let code: Code
    /// What failed and why, for people.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The status as the C enumeration, or `nil` for the Swift-side codes.
    public var status: mnv3_status? {
        code.rawValue < 1000 ? mnv3_status(rawValue: UInt32(bitPattern: code.rawValue)) : nil
    }

    public var description: String { message.isEmpty ? code.description : message }
}

extension MobileNetV3Error {
    /// Builds an error from a C status and the optional detail the library filled in.
    init(status: mnv3_status, error: mnv3_error?, context: String? = nil) {
        var text = ""
        if var detail = error, detail.status == status {
            text = withUnsafeBytes(of: &detail.message) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        if text.isEmpty, let s = mnv3_status_string(status) { text = String(cString: s) }
        if let context { text = "\(context): \(text)" }
        self.init(Code(rawValue: Int32(bitPattern: status.rawValue)), text)
    }
}

/// Runs a C call that fills an `mnv3_error`, turning a failure into `MobileNetV3Error`.
@inline(__always)
func check(_ context: String? = nil,
           _ body: (UnsafeMutablePointer<mnv3_error>) -> mnv3_status) throws(MobileNetV3Error) {
    var error = mnv3_error()
    let status = body(&error)
    if status != MNV3_OK { throw MobileNetV3Error(status: status, error: error, context: context) }
}

/// Runs a C call that returns only a status.
@inline(__always)
func check(_ context: String? = nil, status: mnv3_status) throws(MobileNetV3Error) {
    if status != MNV3_OK { throw MobileNetV3Error(status: status, error: nil, context: context) }
}
