using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation;

/// <summary>
/// A 5×7 pixel font (upper-case letters, digits, common punctuation) for captions on PNGs. Embedded because the
/// ImageSharp drawing/font packages are not available and images must not depend on system fonts.
/// Lower case is drawn as upper case; characters without a glyph are drawn as '?'.
/// </summary>
internal static class BitmapFont
{
    public const int GlyphWidth = 5;
    public const int GlyphHeight = 7;
    /// <summary>Horizontal advance per character at scale 1 (glyph plus one pixel of spacing).</summary>
    public const int Advance = 6;

    // Each glyph: 7 rows of 5 pixels, '#' = ink.
    private static readonly Dictionary<char, string[]> Glyphs = new()
    {
        ['A'] = [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
        ['B'] = ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "],
        ['C'] = [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "],
        ['D'] = ["#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "],
        ['E'] = ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
        ['F'] = ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
        ['G'] = [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"],
        ['H'] = ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
        ['I'] = [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
        ['J'] = ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
        ['K'] = ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"],
        ['L'] = ["#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"],
        ['M'] = ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"],
        ['N'] = ["#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"],
        ['O'] = [" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
        ['P'] = ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "],
        ['Q'] = [" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"],
        ['R'] = ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"],
        ['S'] = [" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "],
        ['T'] = ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
        ['U'] = ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
        ['V'] = ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "],
        ['W'] = ["#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "],
        ['X'] = ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"],
        ['Y'] = ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "],
        ['Z'] = ["#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"],
        ['0'] = [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
        ['1'] = ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
        ['2'] = [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
        ['3'] = ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
        ['4'] = ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
        ['5'] = ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
        ['6'] = ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
        ['7'] = ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
        ['8'] = [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
        ['9'] = [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
        [' '] = ["     ", "     ", "     ", "     ", "     ", "     ", "     "],
        ['.'] = ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "],
        [','] = ["     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "],
        [':'] = ["     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "],
        [';'] = ["     ", " ##  ", " ##  ", "     ", " ##  ", "  #  ", " #   "],
        ['%'] = ["##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"],
        ['-'] = ["     ", "     ", "     ", "#####", "     ", "     ", "     "],
        ['+'] = ["     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "],
        ['='] = ["     ", "     ", "#####", "     ", "#####", "     ", "     "],
        ['('] = ["   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "],
        [')'] = [" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "],
        ['['] = [" ### ", " #   ", " #   ", " #   ", " #   ", " #   ", " ### "],
        [']'] = [" ### ", "   # ", "   # ", "   # ", "   # ", "   # ", " ### "],
        ['/'] = ["     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "],
        ['\\'] = ["     ", "#    ", " #   ", "  #  ", "   # ", "    #", "     "],
        ['|'] = ["  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
        ['<'] = ["   # ", "  #  ", " #   ", "#    ", " #   ", "  #  ", "   # "],
        ['>'] = [" #   ", "  #  ", "   # ", "    #", "   # ", "  #  ", " #   "],
        ['?'] = [" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "],
        ['!'] = ["  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "     ", "  #  "],
        ['\''] = ["  #  ", "  #  ", " #   ", "     ", "     ", "     ", "     "],
        ['"'] = [" # # ", " # # ", "     ", "     ", "     ", "     ", "     "],
        ['_'] = ["     ", "     ", "     ", "     ", "     ", "     ", "#####"],
        ['#'] = [" # # ", " # # ", "#####", " # # ", "#####", " # # ", " # # "],
        ['*'] = ["     ", "# # #", " ### ", "#####", " ### ", "# # #", "     "],
        ['&'] = [" ##  ", "#  # ", "# #  ", " #   ", "# # #", "#  # ", " ## #"],
        ['@'] = [" ### ", "#   #", "# ###", "# # #", "# ###", "#    ", " ####"],
        ['$'] = ["  #  ", " ####", "# #  ", " ### ", "  # #", "#### ", "  #  "],
        ['^'] = ["  #  ", " # # ", "#   #", "     ", "     ", "     ", "     "],
        ['~'] = ["     ", "     ", " #   ", "# # #", "   # ", "     ", "     "],
        ['`'] = [" #   ", "  #  ", "     ", "     ", "     ", "     ", "     "],
        ['{'] = ["   # ", "  #  ", "  #  ", " #   ", "  #  ", "  #  ", "   # "],
        ['}'] = [" #   ", "  #  ", "  #  ", "   # ", "  #  ", "  #  ", " #   "],
        ['×'] = ["     ", "#   #", " # # ", "  #  ", " # # ", "#   #", "     "],
        ['ε'] = ["     ", "     ", " ####", "#    ", " ### ", "#    ", " ####"],
        ['δ'] = [" ### ", "#    ", " ##  ", "#  # ", "#   #", "#   #", " ### "],
    };

    /// <summary>Characters that have a glyph (after upper-casing).</summary>
    public static bool HasGlyph(char c) => Glyphs.ContainsKey(char.ToUpperInvariant(c));

    /// <summary>Width in pixels of <paramref name="text"/> at <paramref name="scale"/>.</summary>
    public static int Measure(string text, int scale = 1) => text.Length == 0 ? 0 : (text.Length * Advance - 1) * scale;

    /// <summary>How many characters fit into <paramref name="width"/> pixels.</summary>
    public static int Fit(int width, int scale = 1) => Math.Max(0, (width / scale + 1) / Advance);

    /// <summary>Shortens <paramref name="text"/> with a trailing ".." so that it fits <paramref name="maxChars"/>.</summary>
    public static string Truncate(string text, int maxChars) =>
        text.Length <= maxChars ? text : maxChars <= 2 ? text[..Math.Max(0, maxChars)] : text[..(maxChars - 2)] + "..";

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y); pixels outside the image are skipped.</summary>
    public static void Draw(Image<Rgba32> image, string text, int x, int y, Rgba32 color, int scale = 1)
    {
        int cx = x;
        foreach (var raw in text)
        {
            var glyph = Glyphs.TryGetValue(char.ToUpperInvariant(raw), out var g) ? g : Glyphs['?'];
            for (int row = 0; row < GlyphHeight; row++)
                for (int col = 0; col < GlyphWidth; col++)
                {
                    if (glyph[row][col] != '#') continue;
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                        {
                            int px = cx + col * scale + dx, py = y + row * scale + dy;
                            if (px >= 0 && py >= 0 && px < image.Width && py < image.Height) image[px, py] = color;
                        }
                }
            cx += Advance * scale;
        }
    }
}
