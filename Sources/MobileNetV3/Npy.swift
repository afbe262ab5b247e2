import CMobileNetV3
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A NumPy `.npy` array of float32, uint8 or int8 elements (C order), read and written by
/// the C library's `.npy` support.
public struct NumpyArray: Hashable, Sendable {
    /// The element storage.
    public enum Storage: Hashable, Sendable {
        case float32([Float])
        case uint8([UInt8])
        /// Signed bytes (`'|i1'`): quantized tensors of int8 models.
        case int8([Int8])
    }

    public var shape: [Int]
    public var storage: Storage

    public init(shape: [Int], floats: [Float]) throws(MobileNetV3Error) {
        guard try Tensor.elementCount(shape) == floats.count else {
            throw MobileNetV3Error(.shape, "shape \(shape) does not hold \(floats.count) elements")
        }
        self.shape = shape
        self.storage = .float32(floats)
    }

    public init(shape: [Int], bytes: [UInt8]) throws(MobileNetV3Error) {
        guard try Tensor.elementCount(shape) == bytes.count else {
            throw MobileNetV3Error(.shape, "shape \(shape) does not hold \(bytes.count) elements")
        }
        self.shape = shape
        self.storage = .uint8(bytes)
    }

    public init(shape: [Int], int8 values: [Int8]) throws(MobileNetV3Error) {
        guard try Tensor.elementCount(shape) == values.count else {
            throw MobileNetV3Error(.shape, "shape \(shape) does not hold \(values.count) elements")
        }
        self.shape = shape
        self.storage = .int8(values)
    }

    /// The float32 elements, or `nil` for another element type.
    public var floats: [Float]? {
        if case .float32(let v) = storage { return v }
        return nil
    }

    /// The uint8 elements, or `nil` for another element type.
    public var bytes: [UInt8]? {
        if case .uint8(let v) = storage { return v }
        return nil
    }

    /// The int8 elements, or `nil` for another element type.
    public var int8Values: [Int8]? {
        if case .int8(let v) = storage { return v }
        return nil
    }

    /// `"float32"`, `"uint8"` or `"int8"`.
    public var dtypeName: String {
        switch storage {
        case .float32: return "float32"
        case .uint8: return "uint8"
        case .int8: return "int8"
        }
    }

    /// Reads a `.npy` file.
    public init(contentsOf url: URL) throws(MobileNetV3Error) {
        let path = url.path
        var array = mnv3_npy_array()
        try check(path) { mnv3_npy_read_file(path, &array, $0) }
        defer { mnv3_npy_free(&array) }
        try self.init(array, name: path)
    }

    /// Parses a `.npy` file image held in memory.
    public init(npyBytes: [UInt8]) throws(MobileNetV3Error) {
        var array = mnv3_npy_array()
        var error = mnv3_error()
        let status = npyBytes.withUnsafeBytes { mnv3_npy_parse($0.baseAddress, $0.count, &array, &error) }
        if status != MNV3_OK { throw MobileNetV3Error(status: status, error: error, context: ".npy bytes") }
        defer { mnv3_npy_free(&array) }
        try self.init(array, name: ".npy bytes")
    }

    private init(_ array: mnv3_npy_array, name: String) throws(MobileNetV3Error) {
        let dims = withUnsafeBytes(of: array.shape) { Array($0.bindMemory(to: Int.self)) }
        shape = Array(dims.prefix(Int(array.ndim)))
        let count = array.count
        guard let data = array.data else { throw MobileNetV3Error(.badArray, "\(name): no data") }
        switch array.dtype {
        case MNV3_NPY_FLOAT32:
            storage = .float32(Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: Float.self), count: count)))
        case MNV3_NPY_UINT8:
            storage = .uint8(Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: UInt8.self), count: count)))
        case MNV3_NPY_INT8:
            storage = .int8(Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: Int8.self), count: count)))
        default:
            throw MobileNetV3Error(.badArray, "\(name): unsupported element type")
        }
    }

    /// Writes the array as a `.npy` file.
    public func write(to url: URL) throws(MobileNetV3Error) {
        let path = url.path
        let dims = shape.map { size_t($0) }
        var error = mnv3_error()
        let status: mnv3_status
        switch storage {
        case .float32(let v):
            status = v.withUnsafeBytes { raw in
                mnv3_npy_write_file(path, MNV3_NPY_FLOAT32, UInt32(dims.count), dims, raw.baseAddress, &error)
            }
        case .uint8(let v):
            status = v.withUnsafeBytes { raw in
                mnv3_npy_write_file(path, MNV3_NPY_UINT8, UInt32(dims.count), dims, raw.baseAddress, &error)
            }
        case .int8(let v):
            status = v.withUnsafeBytes { raw in
                mnv3_npy_write_file(path, MNV3_NPY_INT8, UInt32(dims.count), dims, raw.baseAddress, &error)
            }
        }
        if status != MNV3_OK { throw MobileNetV3Error(status: status, error: error, context: path) }
    }
}
