using System.Buffers.Binary;
using System.IO.Compression;

namespace Robustness.Data;

/// <summary>
/// A dataset file opened for reading: the stream to read (decompressing when the content is gzip) and, for gzip,
/// the trailer (CRC-32 and size of the last member) to verify the data against once it has been read.
/// </summary>
internal sealed class DatasetStream(Stream stream, string file, (uint Crc, uint Size)? gzipTrailer, bool ownsStream = true) : IDisposable
{
    public Stream Stream { get; } = stream;
    public string File { get; } = file;
    public bool Compressed => GzipTrailer.HasValue;
    public (uint Crc, uint Size)? GzipTrailer { get; } = gzipTrailer;

    /// <summary>Disposes the stream when this object opened it (a file, or a decompressor over a caller's stream).</summary>
    public void Dispose()
    {
        if (ownsStream) Stream.Dispose();
    }
}

/// <summary>
/// Reading untrusted dataset bytes without trusting their headers: gzip is recognised by its magic bytes, and a
/// payload whose size a header claims is read in growing chunks, so memory follows the bytes actually present,
/// never the claim. Decompression and I/O failures come out as <see cref="DataFormatException"/>.
/// </summary>
internal static class BoundedInput
{
    /// <summary>The largest payload we accept: the largest byte[] .NET can allocate (just under 2 GiB).</summary>
    public static long MaxPayloadBytes => Array.MaxLength;

    private const int FirstChunk = 1 << 20;

    /// <summary>Header (10 bytes) + empty deflate block (2) + trailer (8): nothing shorter is a gzip file.</summary>
    private const int MinGzipBytes = 20;

    /// <summary>Opens <paramref name="path"/>, transparently decompressing gzip (detected by the bytes 1F 8B).</summary>
    public static DatasetStream OpenFile(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot open ({e.Message})", e);
        }
        try
        {
            return Wrap(file, path, leaveOpen: false);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Wraps a seekable stream in a gzip decompressor when it starts with the gzip magic bytes. With
    /// <paramref name="leaveOpen"/>, disposing the result leaves <paramref name="seekable"/> open.
    /// </summary>
    public static DatasetStream Wrap(Stream seekable, string file, bool leaveOpen)
    {
        if (!seekable.CanSeek) throw new ArgumentException("dataset streams must be seekable", nameof(seekable));
        long start = seekable.Position;
        Span<byte> magic = stackalloc byte[2];
        int got = ReadUpTo(seekable, magic, file);
        seekable.Position = start;
        if (got < 2 || magic[0] != 0x1F || magic[1] != 0x8B) return new DatasetStream(seekable, file, null, ownsStream: !leaveOpen);

        // .NET's GZipStream accepts a file cut inside its 8-byte trailer (or without one), so truncation at the very
        // end would go unnoticed; we read the trailer here and check it against the data in VerifyGzipTrailer.
        long length = seekable.Length - start;
        if (length < MinGzipBytes) throw new DataFormatException(file, $"truncated gzip file ({length} bytes)");
        Span<byte> trailer = stackalloc byte[8];
        seekable.Position = start + length - 8;
        ReadUpTo(seekable, trailer, file);
        seekable.Position = start;
        var crcAndSize = (BinaryPrimitives.ReadUInt32LittleEndian(trailer), BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]));
        return new DatasetStream(new GZipStream(seekable, CompressionMode.Decompress, leaveOpen), file, crcAndSize);
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes; returns how many were present before the end.</summary>
    public static int ReadUpTo(Stream stream, Span<byte> buffer, string file)
    {
        int filled = 0;
        try
        {
            while (filled < buffer.Length)
            {
                int n = stream.Read(buffer[filled..]);
                if (n == 0) break;
                filled += n;
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw Translate(file, e);
        }
        return filled;
    }

    /// <summary>
    /// Reads a payload the header says is <paramref name="claimed"/> bytes long and requires the stream to end right
    /// after it. The buffer starts small and doubles as data arrives, so a header claiming gigabytes over a tiny file
    /// fails after reading the tiny file, without allocating the claim. <paramref name="header"/> is what was read
    /// before the payload (needed to verify a gzip trailer, which covers all decompressed bytes).
    /// </summary>
    public static byte[] ReadPayload(DatasetStream input, ReadOnlySpan<byte> header, long claimed, string what)
    {
        var (stream, file) = (input.Stream, input.File);
        if (claimed > MaxPayloadBytes)
            throw new DataFormatException(file, $"header declares {claimed:N0} bytes of {what}, more than the {MaxPayloadBytes:N0} we can hold");
        if (!input.Compressed)
        {
            // Raw file: the bytes present are known up front, so a false claim fails before any reading.
            long present = stream.Length - stream.Position;
            if (present < claimed)
                throw new DataFormatException(file, $"truncated: header declares {claimed:N0} bytes of {what} but only {present:N0} follow the header");
            if (present > claimed)
                throw new DataFormatException(file, $"{present - claimed:N0} unexpected bytes after the {claimed:N0} bytes of {what} the header declares");
        }
        var buffer = new byte[(int)Math.Min(claimed, FirstChunk)];
        int filled = 0;
        try
        {
            while (filled < claimed)
            {
                if (filled == buffer.Length)
                    Array.Resize(ref buffer, (int)Math.Min(claimed, (long)buffer.Length * 2));
                int n = stream.Read(buffer, filled, buffer.Length - filled);
                if (n == 0)
                    throw new DataFormatException(file, $"truncated: header declares {claimed:N0} bytes of {what} but the {(input.Compressed ? "decompressed stream" : "file")} ends after {filled:N0}");
                filled += n;
            }
            if (stream.ReadByte() != -1)
                throw new DataFormatException(file, $"unexpected data after the {claimed:N0} bytes of {what} the header declares");
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw Translate(file, e);
        }
        if (input.GzipTrailer is { } trailer) VerifyGzipTrailer(trailer, header, buffer, file);
        return buffer;
    }

    /// <summary>
    /// The last gzip member's trailer holds the CRC-32 and size of that member's data, which is the tail of everything
    /// decompressed (the whole of it for the usual single-member file). A file cut short has deflate bytes where the
    /// trailer should be, so the check fails; it also catches a corrupted trailer.
    /// </summary>
    private static void VerifyGzipTrailer((uint Crc, uint Size) trailer, ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload, string file)
    {
        long total = header.Length + (long)payload.Length;
        if (trailer.Size > total)
            throw new DataFormatException(file, $"truncated or corrupt gzip: trailer gives {trailer.Size:N0} bytes but {total:N0} were decompressed");
        int fromHeader = (int)Math.Max(0, trailer.Size - payload.Length);
        uint crc = Crc32.Append(Crc32.Initial, header[(header.Length - fromHeader)..]);
        crc = Crc32.Append(crc, payload[(int)(payload.Length - (trailer.Size - fromHeader))..]);
        if (Crc32.Finish(crc) != trailer.Crc)
            throw new DataFormatException(file, "truncated or corrupt gzip: the CRC-32 in its trailer does not match the data");
    }

    /// <summary>Translates decompression and I/O errors (corrupt or truncated gzip) into a one-line file error.</summary>
    private static DataFormatException Translate(string file, Exception e) => e is InvalidDataException
        ? new DataFormatException(file, $"corrupt gzip data ({e.Message})", e)
        : new DataFormatException(file, $"read error ({e.Message})", e);
}

/// <summary>CRC-32 as in gzip (ISO-HDLC, reflected polynomial 0xEDB88320), slicing by 8 bytes.</summary>
internal static class Crc32
{
    public const uint Initial = 0xFFFFFFFF;

    private static readonly uint[] Table = BuildTable();

    public static uint Finish(uint crc) => crc ^ 0xFFFFFFFF;

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var t = Table;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            uint low = BinaryPrimitives.ReadUInt32LittleEndian(data[i..]) ^ crc;
            uint high = BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]);
            crc = t[7 * 256 + (low & 0xFF)] ^ t[6 * 256 + ((low >> 8) & 0xFF)] ^ t[5 * 256 + ((low >> 16) & 0xFF)] ^ t[4 * 256 + (low >> 24)]
                ^ t[3 * 256 + (high & 0xFF)] ^ t[2 * 256 + ((high >> 8) & 0xFF)] ^ t[256 + ((high >> 16) & 0xFF)] ^ t[high >> 24];
        }
        for (; i < data.Length; i++) crc = t[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        for (int slice = 1; slice < 8; slice++)
            for (int n = 0; n < 256; n++)
                t[slice * 256 + n] = t[(slice - 1) * 256 + n] >> 8 ^ t[t[(slice - 1) * 256 + n] & 0xFF];
        return t;
    }
}
