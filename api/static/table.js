// The desks table: every desk in order, but only the rows around the view in the document.
// 100,000 rows in the DOM take seconds to lay out and make every scroll and change slow; the
// rows outside the view are two spacer rows of the same height.

const OVERSCAN = 100; // rows kept beyond each edge of the view (a small registry: all of them)
const FALLBACK_ROW_PX = 37; // until a row has been measured

// Oldest first, as the API lists them; plain comparison (ISO times, ids), no locale rules.
const keyOf = (desk) => [String(desk.created_at ?? ""), String(desk.id)];
const before = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

export class DeskTable {
  constructor(body, scroller, makeRow, flash) {
    this.body = body;
    this.scroller = scroller;
    this.makeRow = makeRow; // desk -> <tr>
    this.flash = flash; // <td> -> void
    this.desks = new Map(); // id -> desk, as last applied
    this.order = []; // ids, oldest first (rows fading out included)
    this.keys = new Map(); // id -> the key it is placed by
    this.leaving = new Map(); // id -> desk, fading out
    this.rows = new Map(); // id -> <tr>, for the rows in the document
    this.appearing = new Set(); // ids new since the last render
    this.rowPx = FALLBACK_ROW_PX;
    this.top = spacer();
    this.bottom = spacer();
    this.body.replaceChildren(this.top, this.bottom);
    this.scheduled = false;
    scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    window.addEventListener("resize", () => this.schedule());
  }

  get size() {
    return this.desks.size;
  }

  get(id) {
    return this.desks.get(id);
  }

  replaceAll(desks) {
    this.desks = new Map(desks.map((desk) => [String(desk.id), desk]));
    this.keys = new Map([...this.desks].map(([id, desk]) => [id, keyOf(desk)]));
    this.order = [...this.desks.keys()].sort((a, b) => {
      const ka = this.keys.get(a);
      const kb = this.keys.get(b);
      return before(ka, kb) ? -1 : before(kb, ka) ? 1 : 0;
    });
    this.leaving.clear();
    this.appearing.clear();
    for (const tr of this.rows.values()) tr.remove();
    this.rows.clear();
    this.render();
  }

  // Show `desk` (new, or a newer state of one shown); a changed row flashes its changed cells.
  put(desk) {
    const id = String(desk.id);
    if (this.leaving.has(id)) this.forget(id); // deleted and made again with its id
    const held = this.desks.get(id);
    this.desks.set(id, desk);
    const key = keyOf(desk);
    if (!held || !sameKey(this.keys.get(id), key)) {
      if (held) this.unplace(id);
      this.place(id, key);
      if (!held) this.appearing.add(id);
      this.schedule();
      return;
    }
    const existing = this.rows.get(id);
    if (existing) {
      const fresh = this.makeRow(desk);
      for (const [index, cell] of [...fresh.cells].entries()) {
        if (cell.textContent !== existing.cells[index]?.textContent) this.flash(cell);
      }
      existing.replaceWith(fresh);
      this.rows.set(id, fresh);
    }
  }

  // Take a desk away: its row fades out where it is, then its place closes.
  delete(id) {
    const desk = this.desks.get(id);
    if (!desk) return;
    this.desks.delete(id);
    this.leaving.set(id, desk);
    const tr = this.rows.get(id);
    if (!tr) {
      this.forget(id);
      return;
    }
    tr.dataset.gone = "true";
    tr.classList.add("fade");
    const drop = () => {
      if (this.rows.get(id) === tr) this.forget(id);
    };
    tr.addEventListener("animationend", drop, { once: true });
    setTimeout(drop, 1000); // reduced motion: no animation, no animationend
  }

  forget(id) {
    if (!this.leaving.delete(id)) return;
    this.unplace(id);
    this.schedule();
  }

  place(id, key) {
    this.order.splice(this.slot(key), 0, id);
    this.keys.set(id, key);
  }

  unplace(id) {
    const low = this.slot(this.keys.get(id));
    const at = this.order[low] === id ? low : this.order.indexOf(id);
    if (at >= 0) this.order.splice(at, 1);
    this.keys.delete(id);
    const tr = this.rows.get(id);
    if (tr) {
      tr.remove();
      this.rows.delete(id);
    }
  }

  // The first place in `order` whose key is not before `key` (a binary search).
  slot(key) {
    let low = 0;
    let high = this.order.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (before(this.keys.get(this.order[middle]), key)) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  // Many events in one frame make one render.
  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.render());
  }

  // Put the rows around the view in the document, keeping those already there in place (a
  // row moved in the document would replay its animation).
  render() {
    this.scheduled = false;
    const scroller = this.scroller;
    const inView = Math.ceil(scroller.clientHeight / this.rowPx) + 1;
    const atEnd = scroller.scrollTop > 0 && scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1;
    let first = Math.max(0, Math.floor(scroller.scrollTop / this.rowPx) - OVERSCAN);
    if (atEnd) first = Math.max(0, this.order.length - inView - 2 * OVERSCAN); // stay at the end
    const last = Math.min(this.order.length, first + inView + 2 * OVERSCAN);
    const wanted = this.order.slice(first, last);
    const keep = new Set(wanted);
    for (const [id, tr] of this.rows) {
      if (!keep.has(id)) {
        tr.remove();
        this.rows.delete(id);
      }
    }
    let cursor = this.top.nextSibling;
    for (const id of wanted) {
      let tr = this.rows.get(id);
      if (!tr) {
        tr = this.makeRow(this.desks.get(id) ?? this.leaving.get(id));
        if (this.leaving.has(id)) tr.dataset.gone = "true";
        if (this.appearing.has(id)) tr.classList.add("appear");
        this.rows.set(id, tr);
      }
      if (tr === cursor) cursor = cursor.nextSibling;
      else this.body.insertBefore(tr, cursor);
    }
    this.appearing.clear();
    this.top.firstChild.style.height = `${first * this.rowPx}px`;
    this.bottom.firstChild.style.height = `${(this.order.length - last) * this.rowPx}px`;
    if (atEnd) scroller.scrollTop = scroller.scrollHeight;
    // The spacers stand for rows of the measured height: measured anew, placed anew.
    if (wanted.length) {
      const height = wanted.reduce((sum, id) => sum + this.rows.get(id).offsetHeight, 0) / wanted.length;
      if (height > 0 && Math.abs(height - this.rowPx) > 0.5) {
        this.rowPx = height;
        this.schedule();
      }
    }
  }
}

function sameKey(a, b) {
  return a !== undefined && a[0] === b[0] && a[1] === b[1];
}

function spacer() {
  const tr = document.createElement("tr");
  tr.className = "spacer";
  tr.setAttribute("aria-hidden", "true");
  const td = document.createElement("td");
  td.colSpan = 5;
  tr.append(td);
  return tr;
}
