// Draws a link as a QR code on a canvas, here in the browser: the link (and the key in its
// fragment) never leaves the page. Dark modules on a white square with the standard quiet zone
// of four modules, whatever the page's colours, so every phone camera reads it.
import qrcode from "./qrcode.js";

/** Draws `text` on `canvas` at `cell` CSS pixels a module; returns the module count. */
export function drawQr(canvas, text, cell = 4) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const modules = qr.getModuleCount();
  const quiet = 4;
  const size = (modules + 2 * quiet) * cell;
  const scale = window.devicePixelRatio || 1;
  canvas.width = size * scale;
  canvas.height = size * scale;
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const g = canvas.getContext("2d");
  g.setTransform(scale, 0, 0, scale, 0, 0);
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, size, size);
  g.fillStyle = "#000000";
  for (let r = 0; r < modules; r += 1) {
    for (let c = 0; c < modules; c += 1) {
      if (qr.isDark(r, c)) g.fillRect((c + quiet) * cell, (r + quiet) * cell, cell, cell);
    }
  }
  return modules;
}
