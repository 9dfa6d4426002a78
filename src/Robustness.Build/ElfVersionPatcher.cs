// Build-time fix for TorchSharp on older glibc/libstdc++ hosts (Debian 12).
//
// TorchSharp 0.107's libLibTorchSharp.so lists GLIBCXX_3.4.32 in its version requirements
// (.gnu.version_r). The only symbol bound to that version is std::ios_base_library_init, a marker
// with no relocation, so the library works with an older libstdc++ once that one requirement is
// marked VER_FLG_WEAK: the dynamic loader then accepts its absence instead of refusing to load.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory (Directory.Build.targets) as the
// build task, and by the test project (with ROBUSTNESS_ELF_NO_TASK defined) to test the logic.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Robustness.Build
{
    /// <summary>Outcome of looking at one ELF file.</summary>
    public enum ElfPatchOutcome { NotElf, NoRequirement, AlreadyWeak, Patched }

    /// <summary>Reads and edits the GNU version-requirement table of a 64-bit little-endian ELF file.</summary>
    public static class ElfVersionPatcher
    {
        public const string TorchSharpLibrary = "libLibTorchSharp.so";
        public const string RequiredVersion = "GLIBCXX_3.4.32";
        public const ushort VerFlagWeak = 0x2;
        private const uint ShtGnuVerneed = 0x6ffffffe;

        /// <summary>A version requirement: the library it names, the version, and its flags.</summary>
        public readonly struct Requirement
        {
            public Requirement(string file, string version, ushort flags, long flagsOffset)
            { File = file; Version = version; Flags = flags; FlagsOffset = flagsOffset; }
            public string File { get; }
            public string Version { get; }
            public ushort Flags { get; }
            /// <summary>Byte offset of vna_flags in the file.</summary>
            public long FlagsOffset { get; }
            public bool IsWeak => (Flags & VerFlagWeak) != 0;
        }

        /// <summary>Lists the entries of .gnu.version_r; empty for a non-ELF or an ELF without one.</summary>
        public static List<Requirement> ReadRequirements(byte[] elf)
        {
            var result = new List<Requirement>();
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                return result;
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only 64-bit little-endian ELF files are supported");
            long shoff = (long)U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
            if (shoff <= 0 || shentsize < 64 || shoff + (long)shnum * shentsize > elf.Length)
                throw new InvalidDataException("section header table out of range");
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
                long offset = (long)U64(elf, sh + 0x18), size = (long)U64(elf, sh + 0x20);
                uint link = U32(elf, sh + 0x28), count = U32(elf, sh + 0x2C);
                if (link >= shnum || offset < 0 || offset + size > elf.Length)
                    throw new InvalidDataException(".gnu.version_r out of range");
                long strSh = shoff + (long)link * shentsize;
                long strOff = (long)U64(elf, strSh + 0x18), strSize = (long)U64(elf, strSh + 0x20);
                long vn = offset;
                for (uint n = 0; n < count; n++)
                {
                    CheckRange(elf, vn, 16, offset, size);
                    ushort cnt = U16(elf, vn + 2);
                    string file = Str(elf, strOff, strSize, U32(elf, vn + 4));
                    long aux = vn + U32(elf, vn + 8);
                    for (int a = 0; a < cnt; a++)
                    {
                        CheckRange(elf, aux, 16, offset, size);
                        ushort flags = U16(elf, aux + 4);
                        string version = Str(elf, strOff, strSize, U32(elf, aux + 8));
                        result.Add(new Requirement(file, version, flags, aux + 4));
                        uint next = U32(elf, aux + 12);
                        if (next == 0) break;
                        aux += next;
                    }
                    uint vnNext = U32(elf, vn + 12);
                    if (vnNext == 0) break;
                    vn += vnNext;
                }
            }
            return result;
        }

        /// <summary>Marks the requirement on <paramref name="version"/> weak, in place in <paramref name="elf"/>.</summary>
        public static ElfPatchOutcome MarkWeak(byte[] elf, string version)
        {
            if (elf.Length < 4 || elf[0] != 0x7f || elf[1] != (byte)'E') return ElfPatchOutcome.NotElf;
            var outcome = ElfPatchOutcome.NoRequirement;
            foreach (var r in ReadRequirements(elf))
            {
                if (r.Version != version) continue;
                if (r.IsWeak) { if (outcome == ElfPatchOutcome.NoRequirement) outcome = ElfPatchOutcome.AlreadyWeak; continue; }
                ushort flags = (ushort)(r.Flags | VerFlagWeak);
                elf[r.FlagsOffset] = (byte)(flags & 0xff);
                elf[r.FlagsOffset + 1] = (byte)(flags >> 8);
                outcome = ElfPatchOutcome.Patched;
            }
            return outcome;
        }

        /// <summary>Patches the file in place (through a temporary file and a rename) when needed.</summary>
        public static ElfPatchOutcome PatchFile(string path, string version)
        {
            byte[] bytes = File.ReadAllBytes(path);
            var outcome = MarkWeak(bytes, version);
            if (outcome != ElfPatchOutcome.Patched) return outcome;
            // Write a new file and swap it in: never edits bytes in place, so a hard link to the NuGet cache stays intact.
            string tmp = path + ".patch.tmp";
            File.WriteAllBytes(tmp, bytes);
            File.Delete(path);
            File.Move(tmp, path);
            return outcome;
        }

        /// <summary>True when a libstdc++ on this host defines <paramref name="version"/>.</summary>
        public static bool HostProvides(string version, IEnumerable<string>? candidates = null)
        {
            candidates ??= new[]
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
            };
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            foreach (var c in candidates)
            {
                if (File.Exists(c) && IndexOf(File.ReadAllBytes(c), needle) >= 0) return true;
            }
            // Not found (or no libstdc++ where we look): weakening the requirement is harmless, so patch.
            return false;
        }

        /// <summary>Finds libLibTorchSharp.so below each directory and weakens the requirement where the host lacks it.</summary>
        public static List<string> PatchDirectories(IEnumerable<string> directories, Func<string, bool>? hostProvides = null, Action<string>? log = null)
        {
            var patched = new List<string>();
            hostProvides ??= v => HostProvides(v);
            if (hostProvides(RequiredVersion)) return patched;
            foreach (var dir in directories)
            {
                // A portable output keeps natives under runtimes/<rid>/native; a RID-specific one (the tool package) beside the app.
                foreach (var lib in new[] { Path.Combine(dir, "runtimes", "linux-x64", "native", TorchSharpLibrary), Path.Combine(dir, TorchSharpLibrary) })
                {
                    if (!File.Exists(lib)) continue;
                    var outcome = PatchFile(lib, RequiredVersion);
                    if (outcome == ElfPatchOutcome.Patched) { patched.Add(lib); log?.Invoke($"marked {RequiredVersion} weak in {lib}"); }
                }
            }
            return patched;
        }

        // netstandard2.0 (MSBuild's inline tasks) has no span search.
        internal static int IndexOf(byte[] hay, byte[] needle)
        {
            for (int i = 0; i + needle.Length <= hay.Length; i++)
            {
                if (hay[i] != needle[0]) continue;
                int j = 1;
                while (j < needle.Length && hay[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }

        private static void CheckRange(byte[] elf, long at, int len, long secOff, long secSize)
        {
            if (at < secOff || at + len > secOff + secSize || at + len > elf.Length)
                throw new InvalidDataException(".gnu.version_r entry out of range");
        }

        private static string Str(byte[] elf, long tableOff, long tableSize, uint index)
        {
            long start = tableOff + index;
            if (index >= tableSize || start >= elf.Length) throw new InvalidDataException("string index out of range");
            long end = start;
            while (end < elf.Length && end < tableOff + tableSize && elf[end] != 0) end++;
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        private static ushort U16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
        private static uint U32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
        private static ulong U64(byte[] b, long o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;
    }

#if !ROBUSTNESS_ELF_NO_TASK
    /// <summary>MSBuild task: weakens GLIBCXX_3.4.32 in the output copy of libLibTorchSharp.so when needed.</summary>
    public class PatchTorchSharpNative : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public string[] Directories { get; set; } = Array.Empty<string>();

        public override bool Execute()
        {
            try
            {
                ElfVersionPatcher.PatchDirectories(Directories, log: m => Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, m));
                return true;
            }
            catch (Exception e)
            {
                Log.LogError($"Robustness: could not patch {ElfVersionPatcher.TorchSharpLibrary}: {e.Message}");
                return false;
            }
        }
    }
#endif
}
