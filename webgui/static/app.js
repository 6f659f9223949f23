// The dashboard's live throughput chart: polls /api/v1/stats with the session cookie and
// draws messages per second (accepted and refused) over the last five minutes.
(function () {
  const canvas = document.getElementById('throughput');
  if (!canvas) return;
  const samples = [];
  const keep = 150;
  let last = null;
  function draw() {
    const w = canvas.width = canvas.clientWidth * (window.devicePixelRatio || 1);
    const h = canvas.height = canvas.clientHeight * (window.devicePixelRatio || 1);
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...samples.map(s => Math.max(s.ok, s.bad)));
    ctx.fillStyle = '#667085';
    ctx.font = (12 * (window.devicePixelRatio || 1)) + 'px sans-serif';
    ctx.fillText(max.toFixed(1) + ' msg/s', 6, 14 * (window.devicePixelRatio || 1));
    [['ok', '#1f5fbf'], ['bad', '#b42318']].forEach(([k, color]) => {
      ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
      samples.forEach((s, i) => {
        const x = w * i / (keep - 1), y = h - 4 - (h - 24) * s[k] / max;
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
  }
  async function poll() {
    try {
      const r = await fetch('/api/v1/stats', { credentials: 'same-origin' });
      if (r.ok) {
        const s = await r.json();
        const now = Date.now() / 1000;
        if (last) {
          const dt = Math.max(0.001, now - last.t);
          samples.push({ ok: (s.delivered - last.delivered) / dt, bad: (s.refused - last.refused) / dt });
          if (samples.length > keep) samples.shift();
        }
        last = { t: now, delivered: s.delivered, refused: s.refused };
        for (const k of ['delivered', 'refused', 'sessions']) {
          const el = document.getElementById('count-' + k);
          if (el) el.textContent = s[k];
        }
        draw();
      }
    } catch (e) { /* the next poll tries again */ }
  }
  poll();
  setInterval(poll, 2000);
})();
