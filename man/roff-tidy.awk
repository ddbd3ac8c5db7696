# Drops the empty paragraphs scdoc 1.11 writes (a .P right after .TH, .SH
# or .SS, right before .SH, .SS or .RE, a .P repeated, a .P at the end),
# which mandoc -T lint reports and every formatter ignores.  Every other
# line is copied as it is.
function is_heading(line) { return line ~ /^\.(TH|SH|SS)( |$)/ }
$0 == ".P" {
	if (!is_heading(last))
		held = 1
	next
}
{
	if (held && !is_heading($0) && $0 != ".RE")
		print ".P"
	held = 0
	print
	last = $0
}
