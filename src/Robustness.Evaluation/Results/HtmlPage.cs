using System.Globalization;
using System.Net;
using System.Text;

namespace Robustness.Evaluation;

/// <summary>
/// What the leaderboard and comparison pages share: a self-contained page frame (inline CSS, one inline script,
/// no external resource of any kind), HTML encoding, number formats, links to reports, and the table sorter.
/// </summary>
internal static class HtmlPage
{
    private const string Css = """
        :root{--ink:#1d2330;--muted:#5b6475;--line:#e3e6eb;--head:#eef0f4;--up:#1f7a3f;--up-bg:#e3f4e8;--down:#b3261e;--down-bg:#fbe7e5;--accent:#2f5bd3}
        *{box-sizing:border-box}
        body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:var(--ink);line-height:1.4}
        header{background:#1d2330;color:#fff;padding:22px 0 18px}
        header .in,main{max-width:1240px;margin:0 auto;padding:0 28px}
        header h1{font-size:26px;margin:0 0 4px;font-weight:650;letter-spacing:.2px}
        header .sub{color:#c9cfdb;font-size:14px}
        main{padding-top:8px;padding-bottom:36px}
        h2{font-size:19px;margin:30px 0 8px}
        p.note,.note{color:var(--muted);font-size:13px;margin:4px 0 10px}
        .panel{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.12);overflow-x:auto}
        table{border-collapse:collapse;width:100%;font-size:14px}
        th,td{padding:9px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle;white-space:nowrap}
        tbody tr:last-child td{border-bottom:0}
        table.fixed{table-layout:fixed} table.fixed th:first-child{width:38%} table.fixed td:first-child{white-space:normal}
        tbody tr:hover{background:#f8f9fb}
        th{background:var(--head);font-weight:600;font-size:13px;color:#333a48;position:relative;user-select:none}
        th.sortable{cursor:pointer;padding-right:22px}
        th.sortable:hover{background:#e4e7ee}
        th.sortable::after{content:"↕";position:absolute;right:7px;color:#9aa1ae;font-size:11px;top:50%;transform:translateY(-50%)}
        th[aria-sort=ascending]::after{content:"▲";color:var(--accent)}
        th[aria-sort=descending]::after{content:"▼";color:var(--accent)}
        td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
        td.rank{font-weight:700;color:#39404d;width:56px}
        tr.top td.rank{color:#a8770b}
        .model b{font-weight:600}
        .sha,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:var(--muted)}
        .runs{color:var(--muted);font-size:12px}
        .panel.scrolls{box-shadow:inset -14px 0 10px -10px rgba(0,0,0,.25),0 1px 3px rgba(0,0,0,.12)}
        td.wrap{white-space:normal;min-width:110px}
        .bar{display:inline-block;vertical-align:middle;width:64px;height:7px;background:#e8ebf0;border-radius:4px;margin-left:10px;overflow:hidden}
        .bar i{display:block;height:100%;background:var(--accent);border-radius:4px}
        .bar.c i{background:#7a59c9}
        .badge{display:inline-block;font-size:11px;padding:1px 7px;border-radius:9px;margin-left:6px;vertical-align:1px}
        .badge.warn{background:#fff1cc;color:#7a5300}
        .badge.bug{background:var(--down-bg);color:var(--down)}
        .dash{color:#a3a9b5}
        td.up{color:var(--up);background:var(--up-bg)} td.down{color:var(--down);background:var(--down-bg)}
        .delta{font-size:12px;margin-left:6px;font-weight:600}
        .delta.up{color:var(--up)} .delta.down{color:var(--down)} .delta.same{color:var(--muted);font-weight:400}
        .banner{padding:11px 15px;border-radius:8px;margin:14px 0;font-size:14px}
        .banner.warn{background:#fff7e6;border-left:5px solid #e6a100}
        .banner.bad{background:var(--down-bg);border-left:5px solid var(--down)}
        .banner.ok{background:#eaf7ee;border-left:5px solid #2e9b50}
        .cards{display:flex;gap:14px;flex-wrap:wrap;margin:16px 0 4px}
        .card{background:#fff;border-radius:10px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.12);min-width:220px;flex:1}
        .card .k{color:var(--muted);font-size:13px} .card .v{font-size:26px;font-weight:650;margin-top:2px}
        .card .t{font-size:13px;margin-top:4px;color:var(--muted)}
        a{color:var(--accent);text-decoration:none} a:hover{text-decoration:underline}
        footer{color:var(--muted);font-size:12px;margin-top:28px}
        @media print{header{background:none;color:#000}header .sub{color:#333}.panel{box-shadow:none;border:1px solid #ccc}th.sortable::after{content:""}body{background:#fff}}
        """;

    /// <summary>
    /// Sorts any table.sortable by a click on (or Enter in) a th.sortable: numbers by data-v, text by content, empty
    /// cells last either way. "#sort=KEY-asc|desc" in the address sorts every table having that column on load.
    /// </summary>
    private const string Script = """
        (function(){
          function value(cell,num){var v=cell.getAttribute('data-v');if(v===null)v=cell.textContent.trim();if(!num)return v===''?null:v.toLowerCase();var x=parseFloat(v);return isNaN(x)?null:x;}
          function sort(table,index,dir){
            var th=table.tHead.rows[0].cells[index],num=th.getAttribute('data-type')==='num',body=table.tBodies[0];
            var rows=Array.prototype.slice.call(body.rows);
            rows.sort(function(a,b){var x=value(a.cells[index],num),y=value(b.cells[index],num);
              if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
              var c=num?x-y:(x<y?-1:x>y?1:0);return dir==='ascending'?c:-c;});
            rows.forEach(function(r){body.appendChild(r);});
            Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.removeAttribute('aria-sort');});
            th.setAttribute('aria-sort',dir);
          }
          function toggle(table,index){var th=table.tHead.rows[0].cells[index],cur=th.getAttribute('aria-sort');
            var first=th.getAttribute('data-first')||'ascending';sort(table,index,cur?(cur==='ascending'?'descending':'ascending'):first);}
          Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(table){
            Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){if(!th.classList.contains('sortable'))return;
              th.tabIndex=0;th.addEventListener('click',function(){toggle(table,i);});
              th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();toggle(table,i);}});});
          });
          // A table wider than its panel scrolls sideways: mark the panel so the edge shows a shadow.
          function fit(){Array.prototype.forEach.call(document.querySelectorAll('.panel'),function(p){p.classList.toggle('scrolls',p.scrollWidth>p.clientWidth+1);});}
          fit();window.addEventListener('resize',fit);
          var m=/sort=([a-z0-9_-]+?)-(asc|desc)\b/.exec(location.hash||'');
          if(m)Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(table){
            Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){if(th.getAttribute('data-key')===m[1])sort(table,i,m[2]==='asc'?'ascending':'descending');});});
        })();
        """;

    public static void Open(StringBuilder sb, string title, string heading, string subHtml)
    {
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
        sb.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">");
        sb.Append($"<title>{E(title)}</title><style>{Css}</style></head><body>\n");
        sb.Append($"<header><div class=\"in\"><h1>{E(heading)}</h1><div class=\"sub\">{subHtml}</div></div></header><main>\n");
    }

    public static void Close(StringBuilder sb, string footerHtml)
    {
        sb.Append($"<footer>{footerHtml}</footer>\n</main>\n<script>{Script}</script>\n</body></html>\n");
    }

    /// <summary>A sortable header cell; <paramref name="first"/> is the direction of the first click.</summary>
    public static string Th(string key, string label, bool numeric, string first = "ascending", string? title = null) =>
        $"<th class=\"sortable{(numeric ? " n" : "")}\" data-key=\"{E(key)}\" data-type=\"{(numeric ? "num" : "text")}\" data-first=\"{first}\"{(title is null ? "" : $" title=\"{E(title)}\"")}>{E(label)}</th>";

    public static string E(string text) => WebUtility.HtmlEncode(text);

    public static string Pct(double v) => MarkdownReportWriter.Pct(v);

    public static string Num(double v, string format = "0.#####") => v.ToString(format, CultureInfo.InvariantCulture);

    public static string V(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Signed difference in percentage points ("+1.25", "−0.50", "±0.00").</summary>
    public static string Points(double delta)
    {
        var p = Math.Round(delta * 100, 2);
        if (p == 0) return "±0.00";
        return (p > 0 ? "+" : "−") + Math.Abs(p).ToString("0.00", CultureInfo.InvariantCulture);
    }

    public static string DeltaClass(double delta) => Math.Round(delta * 100, 2) switch { > 0 => "up", < 0 => "down", _ => "same" };

    /// <summary>
    /// A link from <paramref name="fromDirectory"/> to the HTML page beside <paramref name="reportJson"/> (report.html for
    /// report.json), else to the JSON file itself; null when neither exists any more. Segments are URL-escaped, '/'-separated.
    /// </summary>
    public static string? ReportLink(string? reportJson, string fromDirectory)
    {
        if (string.IsNullOrEmpty(reportJson)) return null;
        var html = Path.ChangeExtension(reportJson, ".html");
        var target = File.Exists(html) ? html : File.Exists(reportJson) ? reportJson : null;
        if (target is null) return null;
        var relative = Path.GetRelativePath(Path.GetFullPath(fromDirectory), target);
        return string.Join('/', relative.Split(Path.DirectorySeparatorChar).Select(s => s == ".." ? s : Uri.EscapeDataString(s)));
    }
}
