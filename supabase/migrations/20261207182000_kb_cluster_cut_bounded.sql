-- A long word's cut moves back over at most eight clusters (review of 20261207180000,
-- issue 14).
--
-- 180000 moved back one cluster per pass until none applied: a text of characters each
-- followed by a joiner (one long joined run) walked back to the chunk's first half, a
-- few hundred passes per chunk, each a match over the chunk, and then cut at the limit
-- anyway. After eight clusters the cut is taken at the limit at once.

-- Redefined (20261207180000_kb_cuts_over_whole_clusters.sql): eight passes at most.
create or replace function private.kb_cluster_cut(p_tok text, p_cut int, p_floor int) returns int
language plpgsql immutable
set search_path = ''
as $$
declare
  v_run text;
  v_prev int;
  v_passes int := 0;
begin
  loop
    v_passes := v_passes + 1;
    v_prev := p_cut;
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
    exit when p_cut = v_prev or p_cut <= p_floor;
    if v_passes >= 8 then
      return null; -- no cluster ends near the cut (a long run of joined characters): the limit
    end if;
  end loop;
  return case when p_cut > p_floor then p_cut end;
end;
$$;
