using System.Globalization;
using System.Text;

namespace Robustness.Evaluation;

/// <summary>
/// One example of the report's gallery: its picture (a strip without text), its caption, and what the page's filter
/// selects it by (true class, attack, broken or robust).
/// </summary>
public sealed record GalleryItem(long Index, byte[] Png, int TrueClass, string TrueClassName, string Attack, bool Broken, IReadOnlyList<CaptionLine> Caption)
{
    public static GalleryItem Of(AdversarialExample e, IReadOnlyList<string> classNames, byte[] png) =>
        new(e.Index, png, e.Label, e.Label >= 0 && e.Label < classNames.Count ? classNames[e.Label] : e.Label.ToString(CultureInfo.InvariantCulture),
            e.AttackName, e.Broken, PerturbationImages.Caption(e, classNames));
}

/// <summary>The gallery section of report.html: a filter bar (class, attack, broken/robust) and one figure per example
/// with its caption as HTML under the picture.</summary>
internal static class ReportGallery
{
    public const string FilterBarId = "gallery-filters";

    public static void Render(StringBuilder sb, IReadOnlyList<GalleryItem> items)
    {
        string E(string s) => HtmlReportWriter.E(s);
        int broken = items.Count(i => i.Broken);
        sb.Append("<h2>Adversarial examples</h2>");
        sb.Append($"<p>{items.Count} examples ({broken} broken, {items.Count - broken} robust). Each picture: clean | perturbation δ amplified around mid-grey | adversarial.</p>");
        sb.Append($"<div class=\"filters\" id=\"{FilterBarId}\" role=\"group\" aria-label=\"filter the examples\" hidden>");
        Select(sb, "class", "class", items.OrderBy(i => i.TrueClass).Select(i => i.TrueClassName).Distinct());
        Select(sb, "attack", "attack", items.Select(i => i.Attack).Distinct());
        Select(sb, "verdict", "outcome", new[] { "broken", "robust" }.Where(v => items.Any(i => i.Broken == (v == "broken"))));
        sb.Append($"<span class=\"count\" aria-live=\"polite\">{items.Count} of {items.Count} shown</span></div>");
        sb.Append($"<div class=\"gallery\" data-filterable=\"{FilterBarId}\">");
        foreach (var item in items)
        {
            var verdict = item.Broken ? "broken" : "robust";
            sb.Append($"<figure data-class=\"{E(item.TrueClassName)}\" data-attack=\"{E(item.Attack)}\" data-verdict=\"{verdict}\">");
            sb.Append(HtmlReportWriter.Img(item.Png, $"sample {item.Index}: clean, perturbation, adversarial"));
            sb.Append($"<figcaption><div class=\"title\">sample {item.Index.ToString(CultureInfo.InvariantCulture)}</div><dl>");
            foreach (var line in item.Caption)
            {
                var tone = line.Verdict switch { Verdict.Broken => " class=\"broken\"", Verdict.Robust => " class=\"robust\"", _ => "" };
                sb.Append($"<dt>{E(line.Key)}</dt><dd{tone}>{E(line.Value)}</dd>");
            }
            sb.Append("</dl></figcaption></figure>");
        }
        sb.Append("<p class=\"none\" hidden>No example matches the filter.</p></div>\n");
    }

    private static void Select(StringBuilder sb, string attribute, string label, IEnumerable<string> values)
    {
        string E(string s) => HtmlReportWriter.E(s);
        sb.Append($"<label>{E(label)} <select data-filter=\"{attribute}\"><option value=\"\">all</option>");
        foreach (var v in values) sb.Append($"<option value=\"{E(v)}\">{E(v)}</option>");
        sb.Append("</select></label>");
    }
}
