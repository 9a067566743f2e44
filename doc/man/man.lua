-- pandoc Lua filter for the man pages generated from doc/*.md.
--
-- GFM pipe tables carry no column widths, and tbl then gives every text
-- column the same narrow share of the line, so long words overflow and
-- groff warns. Here each column gets at least its longest unbreakable
-- word and the rest of the line is shared in proportion to how much more
-- text a column holds (the automatic table layout of HTML). Long inline
-- code (paths, cipher lists, metric names) gets break points after
-- punctuation so that it fits a column.

-- An 80-column terminal leaves 72 columns after the man indent; tbl puts
-- 3 between columns; pandoc writes a width fraction w as w*70 ens.
local LINE, GAP, PANDOC_SCALE = 72, 3, 70
local BREAK = "\\:" -- roff: a line may break here, nothing is printed
local SPLIT_OVER = 16 -- code spans longer than this get break points

local function is_break(i)
  return i.t == "RawInline" and i.format == "man" and i.text == BREAK
end

-- `a/b:c` -> `a/` BREAK `b:` BREAK `c`
local function split_code(c)
  if utf8.len(c.text) <= SPLIT_OVER then
    return nil
  end
  local out, piece = {}, ""
  for _, ch in utf8.codes(c.text) do
    local s = utf8.char(ch)
    if s == "{" and piece ~= "" then
      table.insert(out, pandoc.Code(piece))
      table.insert(out, pandoc.RawInline("man", BREAK))
      piece = ""
    end
    piece = piece .. s
    if s:match("[/:,.@+%-]") then
      table.insert(out, pandoc.Code(piece))
      table.insert(out, pandoc.RawInline("man", BREAK))
      piece = ""
    end
  end
  if piece ~= "" then
    table.insert(out, pandoc.Code(piece))
  elseif #out > 0 then
    table.remove(out) -- no break point after the last piece
  end
  return out
end

-- the length of the text and of its longest unbreakable word
local function measure(blocks)
  local spaced = pandoc.walk_block(pandoc.Div(blocks), {
    RawInline = function(r)
      if is_break(r) then
        return pandoc.Space()
      end
    end,
  })
  local s = pandoc.utils.stringify(spaced)
  local longest = 0
  for w in s:gmatch("%S+") do
    longest = math.max(longest, utf8.len(w) or #w)
  end
  return utf8.len(s) or #s, longest
end

function Table(t)
  local n = #t.colspecs
  local nat, minw = {}, {}
  for i = 1, n do
    nat[i], minw[i] = 1, 1
  end
  local function scan(rows)
    for _, row in ipairs(rows) do
      for i, cell in ipairs(row.cells) do
        cell.contents = pandoc.walk_block(pandoc.Div(cell.contents),
          { Code = split_code }).content
        local l, w = measure(cell.contents)
        nat[i] = math.max(nat[i], l)
        minw[i] = math.max(minw[i], w)
      end
    end
  end
  scan(t.head.rows)
  for _, b in ipairs(t.bodies) do
    scan(b.body)
  end
  local avail = LINE - GAP * (n - 1) - 1
  local sumnat, summin = 0, 0
  for i = 1, n do
    sumnat, summin = sumnat + nat[i], summin + minw[i]
  end
  for i = 1, n do
    local w = nat[i]
    if sumnat > avail then
      w = minw[i]
      if avail > summin then
        w = w + math.floor((avail - summin) * (nat[i] - minw[i]) / (sumnat - summin))
      end
    end
    t.colspecs[i] = { t.colspecs[i][1], w / PANDOC_SCALE }
  end
  return t
end

-- A link to another page of doc/ reads on GitHub; in a man page the page's
-- name, already in the link text, is enough.
function Link(l)
  if not l.target:match("^%a[%w+.-]*:") and l.target:match("%.md") then
    return l.content
  end
end
