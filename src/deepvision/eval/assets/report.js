(function(){
  var data = JSON.parse(document.getElementById('error-data').textContent);
  var body = document.querySelector('#errors tbody');
  var fb = document.getElementById('f-bench'), fc = document.getElementById('f-cat');
  var count = document.getElementById('shown');
  function esc(s){var d=document.createElement('div');d.textContent=String(s);return d.innerHTML;}
  var benches = [], cats = [];
  data.forEach(function(r){
    if (benches.indexOf(r.bench) < 0) benches.push(r.bench);
    Object.keys(r.categories).forEach(function(k){
      var c = k + '=' + r.categories[k]; if (cats.indexOf(c) < 0) cats.push(c);});
  });
  cats.sort();
  benches.forEach(function(b){fb.add(new Option(b, b));});
  cats.forEach(function(c){fc.add(new Option(c, c));});
  function render(){
    var b = fb.value, c = fc.value, html = [], n = 0;
    data.forEach(function(r){
      if (b && r.bench !== b) return;
      if (c) { var i = c.indexOf('='); if (String(r.categories[c.slice(0, i)]) !== c.slice(i + 1)) return; }
      n += 1;
      var imgs = r.images.map(function(u){return '<img alt="figure" src="' + u + '">';}).join('');
      var opts = r.options.map(function(o, i){return String.fromCharCode(65 + i) + '. ' + esc(o);}).join('<br>');
      html.push('<tr class="err"><td>' + esc(r.bench) + '<br>' + esc(r.id) + ' #' + r.sample +
        '</td><td>' + imgs + '</td><td class="q">' + esc(r.question) + (opts ? '<br>' + opts : '') +
        '</td><td>' + esc(r.gold) + '</td><td class="bad">' +
        (r.extracted === null ? '<i>unparsed</i>' : esc(r.extracted)) + '</td><td>' +
        esc(r.method) + '<br><small>' + esc(r.reason) + '</small></td><td><details><summary>response</summary><pre>' +
        esc(r.response) + '</pre></details></td></tr>');
    });
    body.innerHTML = html.join('');
    count.textContent = String(n);
    document.body.setAttribute('data-rows', String(n));
  }
  function fromHash(){
    var h = new URLSearchParams(location.hash.slice(1));
    if (h.get('bench') !== null) fb.value = h.get('bench');
    if (h.get('cat') !== null) fc.value = h.get('cat');
    render();
  }
  fb.addEventListener('change', render); fc.addEventListener('change', render);
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
