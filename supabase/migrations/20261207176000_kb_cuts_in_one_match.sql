-- A long word's cut finds the marks before it in one match, and a cut after a sentence
-- end is checked as a cut at the limit is (review of 20261207172000, issue 14).
--
-- 172000 stepped back over combining marks one character at a time, each step counting
-- the chunk again: a run of marks (a 1,000,000-character document of them passes every
-- check) cost hundreds of steps per chunk, seconds in the insert's trigger. And a cut
-- after a sentence end at exactly half the chunk was dropped for a cut at the limit
-- without the check for a mark there. private.kb_cluster_cut finds the run of marks after
-- (or the joiner before) a cut with one anchored match; a sentence end's cut and the
-- limit's are both checked, the limit itself taken only when marks fill the chunk's
-- second half.

create function private.kb_cluster_cut(p_tok text, p_cut int, p_floor int) returns int
language plpgsql immutable
set search_path = ''
as $$
declare
  v_run text;
begin
  -- Marks after the cut belong to the character before them: the cut goes before that
  -- character (one anchored match over the run, whatever its length).
  v_run := substring(left(p_tok, p_cut + 1) from '[\u0300-\u036F\u0483-\u0489\u0591-\u05BD\u05BF-\u05C7\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0900-\u0903\u093A-\u094F\u0951-\u0957\u0962\u0963\u0981-\u0983\u09BC-\u09D7\u0E31\u0E34-\u0E3A\u0E47-\u0E4E\u0EB1\u0EB4-\u0EBC\u0EC8-\u0ECD\u1AB0-\u1AFF\u1DC0-\u1DFF\u200C\u200D\u20D0-\u20FF\u302A-\u302F\u3099\u309A\uFE00-\uFE0F\uFE20-\uFE2F\U0001F3FB-\U0001F3FF\U000E0100-\U000E01EF]+$');
  if v_run is not null then
    p_cut := p_cut - char_length(v_run);
  elsif right(left(p_tok, p_cut), 1) = U&'\200D' then
    -- A joiner ending the chunk joins it to the next character: before the joined one.
    v_run := substring(left(p_tok, p_cut) from '[\u0300-\u036F\u0483-\u0489\u0591-\u05BD\u05BF-\u05C7\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0900-\u0903\u093A-\u094F\u0951-\u0957\u0962\u0963\u0981-\u0983\u09BC-\u09D7\u0E31\u0E34-\u0E3A\u0E47-\u0E4E\u0EB1\u0EB4-\u0EBC\u0EC8-\u0ECD\u1AB0-\u1AFF\u1DC0-\u1DFF\u200C\u200D\u20D0-\u20FF\u302A-\u302F\u3099\u309A\uFE00-\uFE0F\uFE20-\uFE2F\U0001F3FB-\U0001F3FF\U000E0100-\U000E01EF]+$');
    p_cut := p_cut - char_length(v_run) - 1;
  end if;
  return case when p_cut > p_floor then p_cut end;
end;
$$;
revoke all on function private.kb_cluster_cut(text, int, int) from public, anon, authenticated;

-- Redefined (20261207172000_kb_long_words_cut_between_characters.sql): the cut by
-- private.kb_cluster_cut.
create or replace function private.kb_chunk_text(p_text text, p_max int default 1200)
returns table (ordinal int, content text)
language plpgsql immutable
set search_path = ''
as $$
declare
  v_para text;
  v_buf text := '';
  v_len int := 0; -- char_length(v_buf), kept rather than counted again
  v_nl int := 0; -- where the last line break in v_buf ends (0: none)
  v_tok text;
  v_tlen int;
  v_n int := 0;
  v_head text;
  v_cut int;
begin
  foreach v_para in array regexp_split_to_array(replace(p_text, E'\r\n', E'\n'), E'\n[ \t]*\n') loop
    v_para := btrim(v_para, E' \t\n');
    continue when v_para = '';
    v_tlen := char_length(v_para);
    if v_len > 0 and v_len + 2 + v_tlen <= p_max then
      v_buf := v_buf || E'\n\n' || v_para;
      v_len := v_len + 2 + v_tlen;
      continue;
    end if;
    if v_len > 0 then
      ordinal := v_n; content := v_buf; return next; v_n := v_n + 1;
      v_buf := ''; v_len := 0;
    end if;
    if v_tlen <= p_max then
      v_buf := v_para; v_len := v_tlen;
      continue;
    end if;
    v_nl := 0;
    for v_tok in select m[1] from regexp_matches(v_para, '(\S+\s*|\s+)', 'g') m loop
      v_tlen := char_length(v_tok);
      while v_len > 0 and v_len + v_tlen > p_max loop
        if v_nl >= p_max / 2 then
          content := btrim(left(v_buf, v_nl), E' \t\n');
          v_buf := right(v_buf, -v_nl);
          v_len := v_len - v_nl;
        else
          content := btrim(v_buf, E' \t\n');
          v_buf := ''; v_len := 0;
        end if;
        v_nl := 0;
        if content <> '' then
          ordinal := v_n; return next; v_n := v_n + 1;
        end if;
      end loop;
      -- A word longer than a chunk (a paragraph of Chinese, Japanese or Thai, which put no
      -- space between words; a long URL): cut after its last sentence end or comma of
      -- those scripts when one falls in the chunk's second half, else at the limit — and
      -- never before a combining mark, a joiner or a variation selector, which belong to
      -- the character before them (a Thai vowel or tone mark, an accent, an emoji's skin
      -- tone): moved back over them. left() and right(…, -n) count only the first p_max
      -- characters (substr() counts the whole text each time).
      while v_tlen > p_max loop
        v_head := left(v_tok, p_max);
        v_cut := coalesce(char_length(substring(v_head from '^.*[。！？；，、．｡､]')), 0);
        v_cut := case when v_cut > p_max / 2 then private.kb_cluster_cut(v_tok, v_cut, p_max / 2) end;
        v_cut := coalesce(v_cut, private.kb_cluster_cut(v_tok, p_max, p_max / 2), p_max);
        content := btrim(left(v_tok, v_cut), E' \t\n');
        if content <> '' then
          ordinal := v_n; return next; v_n := v_n + 1;
        end if;
        v_tok := right(v_tok, -v_cut);
        v_tlen := v_tlen - v_cut;
      end loop;
      v_buf := v_buf || v_tok;
      v_len := v_len + v_tlen;
      if strpos(v_tok, E'\n') > 0 then
        v_nl := v_len - char_length(substring(v_tok from E'\n([^\n]*)$'));
      end if;
    end loop;
    v_buf := btrim(v_buf, E' \t\n');
    v_len := char_length(v_buf);
  end loop;
  if v_len > 0 then
    ordinal := v_n; content := v_buf; return next;
  end if;
end;
$$;
