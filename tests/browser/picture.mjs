// The decoded picture, read in the page: the colour at the centre of a <video> at each new frame
// (requestVideoFrameCallback and a canvas), so a test can wait for what the screen shows to reach
// the viewer, and the longest pause between frames.
//
// `installPicture(page)` defines, in the page:
// - `colourOf(video)`: [r, g, b] at the centre of the current frame, or null before the first;
// - `see(id, rgb, limitMs, away = false)`: resolves at the first frame of <video id> whose centre
//   is near `rgb` ("RRGGBB"), or far from it with `away`: {at (ms since the epoch), colour,
//   frames, width, height}; rejects after `limitMs` saying what it saw;
// - `watchGaps(id)`, then `gaps(id)`: the longest pause between two frames (ms) since the last
//   `gaps` call.

export async function installPicture(page) {
  await page.evaluate(() => {
    const hex = (s) => [0, 2, 4].map((i) => parseInt(s.slice(i, i + 2), 16));
    const near = (c, rgb) => c && hex(rgb).every((x, i) => Math.abs(x - c[i]) <= 48);
    window.colourOf = (v) => {
      if (!v.videoWidth) return null;
      const c = document.createElement('canvas');
      c.width = 64; c.height = 36;
      const ctx = c.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(v, 0, 0, 64, 36);
      return Array.from(ctx.getImageData(32, 18, 1, 1).data.slice(0, 3));
    };
    window.see = (id, rgb, limit, away = false) => new Promise((resolve, reject) => {
      const v = document.getElementById(id);
      let frames = 0;
      let last = null;
      const timer = setTimeout(() => reject(new Error(`${id} did not show ${away ? 'anything but ' : ''}${rgb} within ${limit} ms `
        + `(${frames} frames, last ${JSON.stringify(last)}, ${v.videoWidth}x${v.videoHeight})`)), limit);
      const step = () => {
        frames++;
        last = window.colourOf(v);
        if (last && near(last, rgb) !== away) {
          clearTimeout(timer);
          resolve({ at: Date.now(), colour: last, frames, width: v.videoWidth, height: v.videoHeight });
        } else {
          v.requestVideoFrameCallback(step);
        }
      };
      v.play().catch(() => {});
      v.requestVideoFrameCallback(step);
    });
    const watched = {};
    window.watchGaps = (id) => {
      const v = document.getElementById(id);
      const w = { last: 0, longest: 0 };
      watched[id] = w;
      const step = () => {
        const now = performance.now();
        if (w.last) w.longest = Math.max(w.longest, now - w.last);
        w.last = now;
        v.requestVideoFrameCallback(step);
      };
      v.requestVideoFrameCallback(step);
    };
    window.gaps = (id) => {
      const w = watched[id];
      const longest = Math.max(w.longest, performance.now() - w.last);
      w.longest = 0;
      return Math.round(longest);
    };
  });
}
