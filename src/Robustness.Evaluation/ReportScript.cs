namespace Robustness.Evaluation;

/// <summary>
/// The one inline script (and the styles it needs) of the HTML pages: sortable tables and the example gallery's
/// filter. Inline so a page works offline and from a file: no CDN, no second file, nothing fetched. Without script the
/// page still reads in full (tables in their written order, every example shown, the filter bar hidden).
/// </summary>
internal static class ReportScript
{
    /// <summary>
    /// Sorting: every <c>table.sortable</c> (only its <c>th.sortable</c> columns), and on a page whose body has
    /// <c>data-autosort</c> every table whose first row is all header cells. A click on (or Enter/Space in) a header
    /// sorts by that column and sets <c>aria-sort</c>; a second click reverses. A column is numeric when it says so
    /// (<c>data-type="num"</c>) or when every non-empty cell starts with a number ("93.5 %", "12 (0.4)"), else text;
    /// <c>data-v</c> on a cell overrides its text. Empty cells and dashes sort last either way; ties keep their order.
    /// "#sort=KEY-asc|desc" in the address sorts the columns with that <c>data-key</c> on load.
    /// Gallery: a <c>.filters</c> bar (hidden until the script runs) with selects named by <c>data-filter</c> shows
    /// only the figures of <c>.gallery[data-filterable]</c> whose <c>data-*</c> attribute matches every choice.
    /// </summary>
    public const string Js = """
        (function(){
          'use strict';
          function each(list,f){Array.prototype.forEach.call(list,f);}
          var NUM=/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?/i;
          function isEmpty(t){return t===''||t==='–'||t==='—'||t==='-';}
          function number(t){var m=NUM.exec(t.replace(/[\s,\u202f]/g,'').replace(/^\u2212/,'-'));return m?parseFloat(m[0]):null;}
          function raw(cell){if(!cell)return '';var v=cell.getAttribute('data-v');return (v===null?cell.textContent:v).trim();}
          function headerRow(t){
            if(t.tHead&&t.tHead.rows.length)return t.tHead.rows[0];
            var r=t.rows[0];if(!r||!r.cells.length)return null;
            for(var i=0;i<r.cells.length;i++)if(r.cells[i].tagName!=='TH')return null;
            return r;
          }
          function bodyRows(t,head){var rows=[];each(t.tBodies,function(b){each(b.rows,function(r){if(r!==head)rows.push(r);});});return rows;}
          function numeric(rows,th,i){
            var type=th.getAttribute('data-type');if(type)return type==='num';
            var any=false;
            var all=rows.every(function(r){var t=raw(r.cells[i]);if(isEmpty(t))return true;any=true;return number(t)!==null;});
            return all&&any;
          }
          function sort(t,head,i,dir){
            var th=head.cells[i],num=th.getAttribute('data-sort-type')==='num',rows=bodyRows(t,head);
            var keyed=rows.map(function(r,k){var s=raw(r.cells[i]);return {r:r,k:k,v:isEmpty(s)?null:(num?number(s):s.toLowerCase())};});
            keyed.sort(function(a,b){
              if(a.v===null||b.v===null)return a.v===b.v?a.k-b.k:(a.v===null?1:-1);
              var c=num?a.v-b.v:a.v.localeCompare(b.v,undefined,{numeric:true});
              return c===0?a.k-b.k:(dir==='ascending'?c:-c);
            });
            keyed.forEach(function(x){x.r.parentNode.appendChild(x.r);});
            each(head.cells,function(c){c.removeAttribute('aria-sort');});
            th.setAttribute('aria-sort',dir);
          }
          var auto=document.body.hasAttribute('data-autosort');
          each(document.querySelectorAll('table'),function(t){
            var explicit=t.classList.contains('sortable');
            if(!explicit&&(!auto||t.hasAttribute('data-nosort')))return;
            var head=headerRow(t);if(!head)return;
            var rows=bodyRows(t,head);if(rows.length<2)return;
            t.classList.add('sortable');
            each(head.cells,function(th,i){
              if(explicit?!th.classList.contains('sortable'):th.textContent.trim()==='')return;
              th.classList.add('sortable');
              th.setAttribute('data-sort-type',numeric(rows,th,i)?'num':'text');
              th.tabIndex=0;
              function toggle(){var cur=th.getAttribute('aria-sort');
                sort(t,head,i,cur?(cur==='ascending'?'descending':'ascending'):(th.getAttribute('data-first')||'ascending'));}
              th.addEventListener('click',toggle);
              th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();toggle();}});
            });
          });
          var m=/sort=([a-z0-9_-]+?)-(asc|desc)\b/.exec(location.hash||'');
          if(m)each(document.querySelectorAll('table.sortable'),function(t){var head=headerRow(t);if(!head)return;
            each(head.cells,function(th,i){if(th.getAttribute('data-key')===m[1]&&th.classList.contains('sortable'))sort(t,head,i,m[2]==='asc'?'ascending':'descending');});});

          // A table wider than its panel scrolls sideways: mark the panel so the edge shows a shadow.
          function fit(){each(document.querySelectorAll('.panel'),function(p){p.classList.toggle('scrolls',p.scrollWidth>p.clientWidth+1);});}
          fit();window.addEventListener('resize',fit);

          each(document.querySelectorAll('.gallery[data-filterable]'),function(gallery){
            var bar=document.getElementById(gallery.getAttribute('data-filterable'));if(!bar)return;
            var selects=bar.querySelectorAll('select[data-filter]'),count=bar.querySelector('.count'),figures=gallery.querySelectorAll('figure');
            var none=gallery.querySelector('.none');
            function apply(){
              var shown=0;
              each(figures,function(f){
                var ok=true;
                each(selects,function(s){if(s.value!==''&&f.getAttribute('data-'+s.getAttribute('data-filter'))!==s.value)ok=false;});
                f.hidden=!ok;if(ok)shown++;
              });
              if(count)count.textContent=shown+' of '+figures.length+' shown';
              if(none)none.hidden=shown>0;
            }
            each(selects,function(s){s.addEventListener('change',apply);});
            bar.hidden=false;
            apply();
          });
        })();
        """;

    /// <summary>Styles for the script's controls, and the page on paper: no controls, tables that break between rows
    /// with their header repeated, plots and examples sized to the page width.</summary>
    public const string Css = """
        th.sortable{cursor:pointer;user-select:none;padding-right:22px;position:relative}
        th.sortable:hover{background:#e4e7ee}
        th.sortable::after{content:"↕";position:absolute;right:7px;top:50%;transform:translateY(-50%);color:#9aa1ae;font-size:11px}
        th[aria-sort=ascending]::after{content:"▲";color:#2f5bd3}
        th[aria-sort=descending]::after{content:"▼";color:#2f5bd3}
        th.sortable:focus-visible{outline:2px solid #2f5bd3;outline-offset:-2px}
        th[data-sort-type=num]{text-align:right}
        .filters{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center;background:#fff;padding:9px 14px;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);margin:4px 0 12px;font-size:14px}
        .filters[hidden],figure[hidden],.none[hidden]{display:none}
        .filters label{display:flex;gap:6px;align-items:center;color:#5b6475}
        .filters select{font:inherit;color:#1d2330;padding:3px 6px;border:1px solid #c9ced8;border-radius:5px;background:#fff}
        .filters .count{color:#5b6475;margin-left:auto}
        .gallery .none{color:#5b6475;padding:12px}
        figcaption .title{font-weight:600;color:#1d2330;margin-bottom:2px}
        figcaption dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 10px;margin:4px 0 0}
        figcaption dt{color:#5b6475} figcaption dd{margin:0;color:#1d2330;overflow-wrap:anywhere}
        figcaption dd.broken{color:#b3261e;font-weight:600} figcaption dd.robust{color:#1f7a3f;font-weight:600}
        @media print{
          @page{margin:14mm}
          body{background:#fff;font-size:10.5pt}
          main{max-width:none;padding:0}
          .filters{display:none!important}
          th.sortable{padding-right:6px} th.sortable::after{content:none}
          .card,table,figure,.plots img{box-shadow:none}
          .cards{gap:8px} .card{border:1px solid #ccc;min-width:0;padding:8px 12px} .card .v{font-size:20px}
          table{border:1px solid #ccc;font-size:8.5pt;max-width:100%}
          th,td{padding:3px 6px}
          thead{display:table-header-group}
          tr,figure,.card,.warn,.ok{break-inside:avoid}
          h2{break-after:avoid}
          .plots img{width:15cm;max-width:100%;height:auto}
          .gallery{gap:6px}
          figure{border:1px solid #ddd;padding:4px}
          figure img{width:5.4cm;height:auto}
          figcaption{max-width:5.4cm;font-size:7.5pt}
          .grid img{max-width:100%;height:auto}
          code{font-size:8pt}
        }
        """;
}
