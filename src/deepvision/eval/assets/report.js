// The item browser of report.html: view, benchmark and category filters, pages of rows, and
// math typeset with KaTeX in the rows shown (responses when opened). The rows are in the page
// already: without this script every row shows, math as written.
(function(){
  var PAGE = 25;
  var rows = [].slice.call(document.querySelectorAll('#items tr.item'));
  var fv = document.getElementById('f-view'), fb = document.getElementById('f-bench');
  var fc = document.getElementById('f-cat'), shown = document.getElementById('shown');
  var prev = document.getElementById('prev'), next = document.getElementById('next');
  var page = 0;
  var benches = [], cats = [];
  rows.forEach(function(r){
    if (benches.indexOf(r.dataset.bench) < 0) benches.push(r.dataset.bench);
    r.cats = JSON.parse(r.dataset.cats);
    r.views = r.dataset.views.split(' ');
    r.cats.forEach(function(c){ if (cats.indexOf(c) < 0) cats.push(c); });
  });
  cats.sort();
  benches.forEach(function(b){ fb.add(new Option(b, b)); });
  cats.forEach(function(c){ fc.add(new Option(c, c)); });

  // Math: `$..$`, `$$..$$`, `\(..\)`, `\[..\]`; a bare `\boxed{..}` is typeset too, and an
  // answer (gold, extracted) that is TeX without delimiters is typeset whole. What KaTeX
  // cannot parse stays as written.
  var MATH = /\$\$[\s\S]*?\$\$|\\\[[\s\S]*?\\\]|\\\([\s\S]*?\\\)|\$[^$]+\$/g;
  var OPTIONS = {
    delimiters: [
      {left: '$$', right: '$$', display: true}, {left: '\\[', right: '\\]', display: true},
      {left: '\\(', right: '\\)', display: false}, {left: '$', right: '$', display: false}
    ],
    throwOnError: true, errorCallback: function(){}, strict: 'ignore'
  };
  function boxedIn(t){
    var out = '', i = 0, j;
    while ((j = t.indexOf('\\boxed{', i)) >= 0) {
      var depth = 0, k = j + 6;
      for (; k < t.length; k++) {
        if (t[k] === '{') depth++;
        else if (t[k] === '}' && --depth === 0) break;
      }
      if (k >= t.length) break;
      out += t.slice(i, j) + '\\(' + t.slice(j, k + 1) + '\\)';
      i = k + 1;
    }
    return out + t.slice(i);
  }
  function withBoxed(s){
    var out = '', last = 0, m;
    MATH.lastIndex = 0;
    while ((m = MATH.exec(s))) { out += boxedIn(s.slice(last, m.index)) + m[0]; last = MATH.lastIndex; }
    return out + boxedIn(s.slice(last));
  }
  function asAnswer(s){
    MATH.lastIndex = 0;
    if (MATH.test(s) || !/\\[a-zA-Z]|[\^_{}]/.test(s)) return withBoxed(s);
    return '\\(' + s + '\\)';
  }
  function typeset(root){
    [].forEach.call(root.querySelectorAll('.tex, .tex-ans'), function(n){
      if (n.hasAttribute('data-typeset')) return;
      var closed = n.closest('details:not([open])');
      if (closed && root.contains(closed)) return;
      n.setAttribute('data-typeset', '');
      var text = n.textContent;
      var tex = n.classList.contains('tex-ans') ? asAnswer(text) : withBoxed(text);
      if (tex !== text) n.textContent = tex;
      renderMathInElement(n, OPTIONS);
    });
  }
  document.addEventListener('toggle', function(e){
    if (e.target.open) typeset(e.target);
  }, true);

  function matches(r){
    if (r.views.indexOf(fv.value) < 0) return false;
    if (fb.value && r.dataset.bench !== fb.value) return false;
    return !fc.value || r.cats.indexOf(fc.value) >= 0;
  }
  function render(){
    var hits = rows.filter(matches);
    var pages = Math.max(1, Math.ceil(hits.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    var first = page * PAGE, visible = hits.slice(first, first + PAGE);
    rows.forEach(function(r){ r.hidden = visible.indexOf(r) < 0; });
    visible.forEach(typeset);
    shown.textContent = hits.length ? 'showing ' + (first + 1) + '-' + (first + visible.length) +
      ' of ' + hits.length + ' (page ' + (page + 1) + ' of ' + pages + ').' : 'none to show.';
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    document.body.setAttribute('data-rows', String(hits.length));
    document.body.setAttribute('data-page-rows', String(visible.length));
  }
  function fromHash(){
    var h = new URLSearchParams(location.hash.slice(1));
    if (h.get('view') !== null) fv.value = h.get('view');
    if (h.get('bench') !== null) fb.value = h.get('bench');
    if (h.get('cat') !== null) fc.value = h.get('cat');
    page = h.get('page') !== null ? (parseInt(h.get('page'), 10) || 1) - 1 : 0;
    render();
  }
  [fv, fb, fc].forEach(function(s){ s.addEventListener('change', function(){ page = 0; render(); }); });
  prev.addEventListener('click', function(){ page -= 1; render(); });
  next.addEventListener('click', function(){ page += 1; render(); });
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
